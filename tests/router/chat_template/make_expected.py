#!/usr/bin/env python3
"""Regenerates expected_renders.json: every real chat template (hf_jinja.TEMPLATES)
rendered over every conversation in conversations.json by jinja2 configured as
transformers configures it. chat_template_golden_test compares duet's renderer
with this file byte for byte.

Usage: DUET_ASSETS=../shared/assets .venv/bin/python tests/router/chat_template/make_expected.py
"""
import json
import sys

import hf_jinja


def main() -> int:
    assets = hf_jinja.assets_dir()
    if not assets.is_dir():
        print(f"assets not found at {assets} (set DUET_ASSETS)", file=sys.stderr)
        return 1
    conversations = json.loads((hf_jinja.HERE / "conversations.json").read_text(encoding="utf-8"))["conversations"]
    renders = []
    for name, location, bos, eos in hf_jinja.TEMPLATES:
        source = hf_jinja.read_template(assets, location)
        for conversation in conversations:
            context = hf_jinja.build_context(conversation, bos, eos)
            result = hf_jinja.render(source, context)
            renders.append({"template": name, "source": location, "conversation": conversation["name"],
                            "context": context, **result})
    out = {"jinja2_version": hf_jinja.jinja2.__version__, "renders": renders}
    path = hf_jinja.HERE / "expected_renders.json"
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    errors = sum(1 for r in renders if "error" in r)
    print(f"wrote {len(renders)} renders ({errors} template errors) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
