"""Event sales (ventes événementielles): forecast, temporary zone, inbound plan, staffing plan, capacity check."""
