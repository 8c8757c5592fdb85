"""lgn.train"""
