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


# what torch's utilities add to a weight's name, on torch.nn's layers as on our cells:
# prune (weight_orig, weight_mask), the older weight_norm (weight_g, weight_v) and spectral_norm
_SUFFIXES = ("", "_orig", "_mask", "_g", "_v", "_u")


def _translate(key: str, pairs) -> str | None:
    """``key`` under the other naming, for ``pairs`` of (name, other name) of each weight, or
    None; parametrize's ``parametrizations.<name>.original0`` follows its weight's name."""
    for name, other in pairs:
        for suffix in _SUFFIXES:
            if key == name + suffix:
                return other + suffix
        head, _, base = name.rpartition(".")
        o_head, _, o_base = other.rpartition(".")
        held = f"{head}.parametrizations.{base}." if head else f"parametrizations.{base}."
        if key.startswith(held):
            o_held = f"{o_head}.parametrizations.{o_base}." if o_head else f"parametrizations.{o_base}."
            return o_held + key[len(held):]
    return None


def _rename_saved(module: nn.Module, state_dict, prefix: str, local_metadata) -> None:
    pairs = [(ours, theirs) for theirs, ours in module._torch_names.items()]
    for key in [k for k in state_dict if k.startswith(prefix)]:
        theirs = _translate(key[len(prefix):], pairs)
        if theirs is not None:
            state_dict[prefix + theirs] = state_dict.pop(key)


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
    pairs = list(module._torch_names.items())
    for key in [k for k in state_dict if k.startswith(prefix)]:
        ours = _translate(key[len(prefix):], pairs)
        if ours is not None:
            state_dict[prefix + ours] = state_dict.pop(key)
    module.__dict__["_loading"] = (prefix, error_msgs)  # for _rename_mismatched
