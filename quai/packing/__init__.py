"""Packing: the pack station that scans every unit ("flashage"), chooses the box, checks the weight, closes parcels."""
