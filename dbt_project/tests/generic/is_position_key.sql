{#-
    Fails for every row whose `column_name` is not the position_key() of its (wallet,
    token_id): the night looks a changed key's checkpoints up by the stored key, so a row
    stored under another key (a release that changed the hash without the full refresh its
    notes ask for) would silently drop out of those lookups.
-#}
{% test is_position_key(model, column_name) %}

select wallet, token_id, {{ column_name }}
from {{ model }}
where {{ column_name }} != {{ position_key('wallet', 'token_id') }}

{% endtest %}
