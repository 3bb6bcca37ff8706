-- Clean and standardize order lines (rewritten with every sync of the shop's database).
SELECT
    order_line_id,
    order_id,
    product_id,
    CAST(quantity AS INTEGER) AS quantity,
    CAST(unit_price AS DECIMAL(10, 2)) AS unit_price,
    CAST(line_amount AS DECIMAL(12, 2)) AS line_amount,
    _fleuve_extracted_at
FROM {{ source('bronze', 'raw_order_lines') }}
WHERE order_line_id IS NOT NULL
