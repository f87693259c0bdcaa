"""torch.nn's parameter names on a drop-in's state dicts (``weight_ih_l0``,
``bias_hh_l1_reverse``, ...): saved under them, loaded from them, and named by them in
``load_state_dict``'s missing-key and size-mismatch reports. ``module._torch_names`` maps
each torch.nn name to the internal one (``stack.layers.0.cell.weight_ih``)."""

from __future__ import annotations

from torch import nn


def register_hooks(module: nn.Module) -> None:
    module.register_state_dict_post_hook(_rename_saved)
    module.register_load_state_dict_pre_hook(_rename_loaded)
    module.register_load_state_dict_post_hook(_rename_missing)
    module.register_load_state_dict_post_hook(_rename_mismatched)
    module.register_load_state_dict_post_hook(_flatten_loaded)


def _rename_saved(module: nn.Module, state_dict, prefix: str, local_metadata) -> None:
    for theirs, ours in module._torch_names.items():
        state_dict[prefix + theirs] = state_dict.pop(prefix + ours)


def _rename_missing(module: nn.Module, incompatible) -> None:
    """Report missing keys by their torch.nn names, the names the caller's dict uses."""
    ours = {v: k for k, v in module._torch_names.items()}
    for k, key in enumerate(incompatible.missing_keys):
        for internal, theirs in ours.items():
            if key == internal or key.endswith("." + internal):
                incompatible.missing_keys[k] = key[: len(key) - len(internal)] + theirs
                break


def _rename_mismatched(module: nn.Module, incompatible) -> None:
    """Report size mismatches by their torch.nn names, as torch.nn's own message does."""
    # the children wrote them after _rename_loaded, which kept the list: post-hooks don't get it
    prefix, error_msgs = module.__dict__.pop("_loading")
    torch_name = {prefix + ours: prefix + theirs for theirs, ours in module._torch_names.items()}
    head = "size mismatch for "
    for k, message in enumerate(error_msgs):
        key, sep, rest = message.removeprefix(head).partition(": ")
        if message.startswith(head) and sep and key in torch_name:
            error_msgs[k] = f"{head}{torch_name[key]}: {rest}"


def _flatten_loaded(module: nn.Module, incompatible) -> None:
    module.flatten_parameters()  # load_state_dict(assign=True) brings new, scattered tensors


def _rename_loaded(module: nn.Module, state_dict, prefix: str, local_metadata, strict, missing_keys,
                   unexpected_keys, error_msgs: list[str]) -> None:
    for theirs, ours in module._torch_names.items():
        if prefix + theirs in state_dict:
            state_dict[prefix + ours] = state_dict.pop(prefix + theirs)
    module.__dict__["_loading"] = (prefix, error_msgs)  # for _rename_mismatched
