{#- Fails for every combination of `columns` that appears more than once (a compound key). -#}
{% test unique_combination(model, columns) %}

select {{ columns | join(', ') }}, count() as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having occurrences > 1

{% endtest %}
