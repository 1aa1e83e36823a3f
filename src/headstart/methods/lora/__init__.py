"""``lora``: parameter-efficient fine-tuning with low-rank adapters (through ``peft``)."""

from headstart.methods._registry import register_method
from headstart.methods.lora.config import LoraConfig
from headstart.methods.lora.method import Lora

register_method(
    "lora",
    LoraConfig,
    Lora,
    kind="transfer",
    summary="head on cached features, then LoRA adapters (peft) in the top blocks, merged",
)
