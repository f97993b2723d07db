"""footfall.models"""
