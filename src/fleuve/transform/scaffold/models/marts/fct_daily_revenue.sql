-- Revenue per day, for the daily revenue dashboard.
SELECT
    order_day AS order_date,
    COUNT(*) AS orders,
    SUM(amount) AS daily_revenue
FROM {{ ref('stg_orders') }}
WHERE status IN ('completed', 'shipped')
GROUP BY order_day
