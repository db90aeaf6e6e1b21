"""``manage.py simulate flash-sale``: a simulated flash-sale day through Quai's real services (docs/SIMULATION.md)."""
