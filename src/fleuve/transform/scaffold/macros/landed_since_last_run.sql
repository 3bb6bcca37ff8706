{#-
  In an incremental run, keep only rows that landed in bronze after the newest row already in
  this model. Ingestion stamps every bronze row with _fleuve_extracted_at, whatever the sync mode,
  so this works for sources without an updated_at column too.
-#}
{% macro landed_since_last_run(column='_fleuve_extracted_at') -%}
    {%- if is_incremental() -%}
        {{ column }} > (
            SELECT coalesce(max(this_run._fleuve_extracted_at), '-infinity'::TIMESTAMPTZ)
            FROM {{ this }} AS this_run
        )
    {%- else -%}
        TRUE
    {%- endif -%}
{%- endmacro %}
