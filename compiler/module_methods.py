"""The model-independent methods of every generated module, as tested Python.

Code generation pastes these methods verbatim into each generated class (the way
lark's standalone parser generator pastes its own tested source), so they are
linted and unit-tested here once and read the same in every module. They use only
``torch`` and the contract's class attributes (``alphabet``,
``sequence_length``, ``parameter_layout``; docs/module.md). The pasted ``encode``
gets a first docstring line naming the model's sequence length.
"""

from __future__ import annotations

import torch


class ModuleMethods:
    """The holder of the pasted methods; generated modules do not inherit from it."""

    alphabet: str
    sequence_length: int
    parameter_layout: dict[str, dict[str, object]]

    def encode(self, sequences):
        """Integer codes (index into alphabet) of the sequences: LongTensor[N, sequence_length].

        Lower case is accepted; a wrong letter or length, or an empty batch,
        raises ValueError naming the first bad sequence.
        """
        if isinstance(sequences, str):
            sequences = [sequences]
        sequences = list(sequences)
        if not sequences:
            raise ValueError("encode: empty batch of sequences")
        for i, s in enumerate(sequences):
            if not isinstance(s, str):
                raise ValueError(f"sequence {i} is not a string: {s!r}")
            if len(s) != self.sequence_length:
                raise ValueError(
                    f"sequence {i} has length {len(s)}, expected {self.sequence_length}: {s!r}"
                )
        table = [-1] * 256
        for code, letter in enumerate(self.alphabet):
            for variant in (letter.lower(), letter.upper()):
                if variant == letter or variant not in self.alphabet:
                    table[ord(variant)] = code
        data = "".join(sequences).encode("latin-1", errors="replace")
        raw = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
        codes = torch.tensor(table)[raw]
        bad = (codes < 0).nonzero()
        if len(bad):
            i, k = divmod(int(bad[0, 0]), self.sequence_length)
            raise ValueError(
                f"sequence {i} has letter {sequences[i][k]!r} at position {k}, "
                f"not in {self.alphabet!r}: {sequences[i]!r}"
            )
        return codes.reshape(len(sequences), self.sequence_length)

    def get_params(self):
        """Every parameter and energy in natural units (kT for energies), detached.

        Keyed by the names in the .bpm file (parameter_layout's order); see
        docs/module.md for site energies.
        """
        values = {}
        for key, slot in self.parameter_layout.items():
            raw = getattr(self, slot["attribute"]).detach()
            if slot["transform"] == "lower":
                values[key] = slot["bound"] + torch.exp(raw)
            elif slot["transform"] == "upper":
                values[key] = slot["bound"] - torch.exp(raw)
            else:
                values[key] = raw.clone()
        return values

    def set_params(self, values):
        """Set any subset of get_params() in natural units (fixed values included).

        KeyError for an unknown name, ValueError for a wrong shape or a value
        outside its bound.
        """
        for key in values:
            if key not in self.parameter_layout:
                known = ", ".join(self.parameter_layout)
                raise KeyError(f"unknown parameter {key!r}; known: {known}")
        with torch.no_grad():
            for key, value in values.items():
                slot = self.parameter_layout[key]
                target = getattr(self, slot["attribute"])
                value = torch.as_tensor(value, dtype=target.dtype, device=target.device)
                if value.shape != target.shape:
                    shapes = f"shape {tuple(value.shape)}, expected {tuple(target.shape)}"
                    raise ValueError(f"{key}: {shapes}")
                transform, bound = slot["transform"], slot["bound"]
                if transform == "lower":
                    if not bool((value > bound).all()):
                        raise ValueError(f"{key} must be > {bound}, got {value.tolist()}")
                    value = torch.log(value - bound)
                elif transform == "upper":
                    if not bool((value < bound).all()):
                        raise ValueError(f"{key} must be < {bound}, got {value.tolist()}")
                    value = torch.log(bound - value)
                target.copy_(value)
