-- Clean and standardize orders.
SELECT
    order_id,
    customer_id,
    order_date,
    CAST(order_date AS DATE) AS order_day,
    LOWER(status) AS status,
    CAST(amount AS DECIMAL(12, 2)) AS amount,
    currency,
    channel,
    updated_at
FROM {{ source('bronze', 'raw_orders') }}
WHERE order_id IS NOT NULL
