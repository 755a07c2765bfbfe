"""Write Tests/Fixtures/kquant-dequantize.json: blocks of random bits in Q5_0, Q4_K, Q5_K
and Q6_K, with the float32 values that the gguf Python package (from the llama.cpp project)
dequantizes them to. KQuantKernelTests checks td_dequantize_row against these values.

Usage: python3 -m venv venv && venv/bin/pip install gguf numpy
       venv/bin/python scripts/make-kquant-golden.py
"""
import json
from importlib.metadata import version

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

# Type, block bytes, elements per block, offsets of the half-precision scales.
LAYOUTS = [(T.Q5_0, 22, 32, [0]), (T.Q4_K, 144, 256, [0, 2]), (T.Q5_K, 176, 256, [0, 2]), (T.Q6_K, 210, 256, [208])]

rng = np.random.default_rng(20261204)
cases = []
for quant_type, block_bytes, elements, half_offsets in LAYOUTS:
    blocks = 4 if quant_type == T.Q5_0 else 2
    data = rng.integers(0, 256, size=(blocks, block_bytes), dtype=np.uint8)
    # Random bits would make some scales infinite or NaN, so the scales are finite halves.
    for offset in half_offsets:
        scales = rng.uniform(-2, 2, size=blocks).astype(np.float16)
        data[:, offset:offset + 2] = scales.view(np.uint8).reshape(blocks, 2)
    raw = data.tobytes()
    values = dequantize(np.frombuffer(raw, dtype=np.uint8).reshape(1, -1), quant_type).reshape(-1).astype(np.float32)
    cases.append({
        "type": quant_type.name,
        "count": blocks * elements,
        "blocks_hex": raw.hex(),
        "values_bits": [f"{bits:08x}" for bits in values.view(np.uint32)],
    })

with open("Tests/Fixtures/kquant-dequantize.json", "w") as out:
    json.dump({"generator": f"gguf {version('gguf')} gguf.quants.dequantize", "cases": cases}, out, indent=1)
    out.write("\n")
