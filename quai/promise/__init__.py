"""Delivery promise: the date a checkout can show, computed from the live warehouse, then watched until kept."""
