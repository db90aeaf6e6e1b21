"""Fulfilment: waves, pick batches (cluster picking into totes), pick routes and the handheld pick screen."""
