"""footfall.edge"""
