"""footfall.exporter"""
