"""`schedule_entity`: one shard of the registry of pending jobs."""

import json
from typing import Any

import azure.durable_functions as df

from scheduling.registry import REGISTRY_ENTITY, RegistryState, apply_operation

bp = df.Blueprint()


@bp.entity_trigger(context_name="context", entity_name=REGISTRY_ENTITY)
def schedule_entity(context: df.DurableEntityContext) -> None:
    state = RegistryState.model_validate(context.get_state(dict) or {})
    argument: Any = context.get_input()
    # Client signals carry their input as a JSON string literal; orchestrations do not.
    if isinstance(argument, str):
        argument = json.loads(argument)
    new_state, result = apply_operation(state, context.operation_name or "", argument)
    context.set_state(new_state.model_dump(mode="json"))
    context.set_result(result)
