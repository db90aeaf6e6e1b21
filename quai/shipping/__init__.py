"""Shipping: carriers and their adapters, labels (PDF, ZPL, SSCC), manifests and tracking events."""
