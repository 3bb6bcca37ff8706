-- What each customer bought and how they browse.
{{ config(partitioned_by=['year(created_at)']) }}

WITH browsing AS (
    SELECT
        customer_id,
        count(DISTINCT session_id) AS sessions,
        count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
        count(*) FILTER (WHERE event_type = 'add_to_cart') AS add_to_carts,
        count(*) FILTER (WHERE event_type = 'checkout') AS checkouts,
        max(occurred_at) AS last_seen_at
    FROM {{ ref('stg_web_events') }}
    WHERE customer_id IS NOT NULL
    GROUP BY customer_id
)

SELECT
    d.customer_id,
    d.country_code,
    d.created_at,
    d.total_orders,
    d.lifetime_value,
    v.average_order_value,
    v.customer_lifespan_days,
    coalesce(b.sessions, 0) AS sessions,
    coalesce(b.page_views, 0) AS page_views,
    coalesce(b.add_to_carts, 0) AS add_to_carts,
    coalesce(b.checkouts, 0) AS checkouts,
    CAST(d.total_orders / nullif(b.sessions, 0) AS DOUBLE) AS orders_per_session,
    b.last_seen_at
FROM {{ ref('dim_customers') }} d
LEFT JOIN {{ ref('fct_customer_lifetime_value') }} v ON v.customer_id = d.customer_id
LEFT JOIN browsing b ON b.customer_id = d.customer_id
