"""`schedule_entity`: one shard of the registry of pending jobs."""

from typing import Any

import azure.durable_functions as df

from scheduling.durable_json import decode_durable_json
from scheduling.registry import REGISTRY_ENTITY, RegistryState, apply_operation

bp = df.Blueprint()


@bp.entity_trigger(context_name="context", entity_name=REGISTRY_ENTITY)
def schedule_entity(context: df.DurableEntityContext) -> None:
    state = RegistryState.model_validate(context.get_state(dict) or {})
    new_state, result = apply_operation(state, context.operation_name or "", _argument(context))
    context.set_state(new_state.model_dump(mode="json"))
    context.set_result(result)


def _argument(context: df.DurableEntityContext) -> Any:
    try:
        argument = context.get_input()
    except TypeError:
        # The client drops an empty input, and the SDK cannot decode the null that arrives.
        return None
    # Client signals carry their input as a JSON string literal; be robust to one more layer.
    return decode_durable_json(argument)
