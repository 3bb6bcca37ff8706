-- One row per customer: who they are and how much they bought (read as gold.customers).
{{ config(partitioned_by=['year(created_at)']) }}

SELECT
    c.customer_id,
    c.customer_name,
    c.first_name,
    c.last_name,
    c.email,
    c.phone,
    c.address,
    c.city,
    c.state,
    c.zip_code,
    c.country_code,
    c.locale,
    c.created_at,
    c.updated_at,
    coalesce(v.total_orders, 0) AS total_orders,
    coalesce(v.lifetime_value, 0) AS lifetime_value,
    v.first_order_date,
    v.last_order_date
FROM {{ ref('stg_customers') }} c
LEFT JOIN {{ ref('fct_customer_lifetime_value') }} v ON v.customer_id = c.customer_id
