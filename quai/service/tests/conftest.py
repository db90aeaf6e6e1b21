from quai.orders.tests.conftest import mug, shelf, shirt, stock  # noqa: F401  (shared fixtures)
