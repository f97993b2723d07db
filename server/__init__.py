"""footfall.server"""
