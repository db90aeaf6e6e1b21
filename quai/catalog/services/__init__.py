"""Writes of the catalog (SKUs and their barcodes, packaging types), one module per sub-domain.

The names other modules use are re-exported here, so ``from quai.catalog.services import sku_create`` keeps working.
"""

from quai.catalog.cleaning import PACKAGING_FIELDS, SKU_FIELDS, SKU_ROW_FIELDS, FieldError
from quai.catalog.services.packaging import packaging_code_check, packaging_type_create, packaging_type_update
from quai.catalog.services.skus import (
    BULK_MAX_ROWS,
    SkuUpsertResult,
    barcode_add,
    barcode_remove,
    sku_bulk_upsert,
    sku_create,
    sku_row_check,
    sku_update,
)

__all__ = [
    "BULK_MAX_ROWS",
    "PACKAGING_FIELDS",
    "SKU_FIELDS",
    "SKU_ROW_FIELDS",
    "FieldError",
    "SkuUpsertResult",
    "barcode_add",
    "barcode_remove",
    "packaging_code_check",
    "packaging_type_create",
    "packaging_type_update",
    "sku_bulk_upsert",
    "sku_create",
    "sku_row_check",
    "sku_update",
]
