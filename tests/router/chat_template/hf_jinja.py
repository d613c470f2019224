"""jinja2 configured exactly as transformers' apply_chat_template configures it.

transformers (utils/chat_template_utils.py, _compile_jinja_template) renders
chat templates with ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True, extensions=[loopcontrols]) (plus an AssistantTracker
extension that only adds the `{% generation %}` tag), replaces the `tojson`
filter with json.dumps(ensure_ascii=False, ...) and adds the globals
raise_exception and strftime_now. Reimplemented here so tests need jinja2 only.
"""
import json
import os
import pathlib
from datetime import datetime

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateRaised(Exception):
    """raise_exception() was called by the template."""


def _raise_exception(message):
    raise TemplateRaised(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format):
    return datetime.now().strftime(format)


def compile_template(source: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(source)


def render(source: str, context: dict) -> dict:
    """{"output": text} or {"error": message, "raised": bool}."""
    try:
        return {"output": compile_template(source).render(**context)}
    except TemplateRaised as e:
        return {"error": str(e), "raised": True}
    except Exception as e:  # any jinja2/Python error is a template error
        return {"error": f"{type(e).__name__}: {e}", "raised": False}


HERE = pathlib.Path(__file__).resolve().parent


def assets_dir() -> pathlib.Path:
    default = HERE.parents[2] / ".." / "shared" / "assets"
    return pathlib.Path(os.environ.get("DUET_ASSETS", default))


# The real templates: name, where the source is (relative to the assets
# directory; "#chat_template" reads that key of a tokenizer_config.json), and
# the special tokens transformers would pass (None: not passed).
TEMPLATES = [
    ("llama-3.3-instruct", "chat_templates/llama-3.3-instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"),
    ("qwen3", "chat_templates/qwen3.jinja", None, "<|im_end|>"),
    ("deepseek-r1-distill-qwen", "chat_templates/deepseek-r1-distill-qwen.jinja",
     "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    ("llama3", "tokenizers/llama3/tokenizer_config.json#chat_template", "<|begin_of_text|>", "<|end_of_text|>"),
    ("llama3_1", "tokenizers/llama3_1/tokenizer_config.json#chat_template", "<|begin_of_text|>", "<|eot_id|>"),
]


def read_template(assets: pathlib.Path, location: str) -> str:
    path, _, key = location.partition("#")
    if key:
        return json.loads((assets / path).read_text(encoding="utf-8"))[key]
    return (assets / path).read_text(encoding="utf-8")


def build_context(conversation: dict, bos_token, eos_token) -> dict:
    """The variables apply_chat_template passes to the template."""
    context = {
        "messages": conversation["messages"],
        "tools": conversation.get("tools"),
        "documents": None,
        "add_generation_prompt": conversation["add_generation_prompt"],
    }
    if bos_token is not None:
        context["bos_token"] = bos_token
    if eos_token is not None:
        context["eos_token"] = eos_token
    context.update(conversation.get("extra", {}))
    return context
