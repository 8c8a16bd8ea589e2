#!/usr/bin/env python3
"""Build PDServe's numerical-oracle fixtures (see DESIGN.md section 6).

Makes, deterministically (fixed seeds, single-threaded torch):
  <out>/tokenizers/<name>/{tokenizer.json,tokenizer_config.json,cases.json}
  <out>/models/<name>/{config.json,*.safetensors,tokenizer files,reference.json}

Usage:
  python3 tests/reference/make_fixtures.py                 # -> tests/fixtures
  python3 tests/reference/make_fixtures.py --out DIR
  python3 tests/reference/make_fixtures.py --bench-model DIR   # ~150M Llama, not a fixture

Requires: torch, transformers (5.x), tokenizers, safetensors. CPU only.
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import unicodedata
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SP = "\u2581"  # ▁

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def corpus_text() -> str:
    text = (HERE / "corpus.txt").read_text(encoding="utf-8")
    # The corpus file spells a few combining sequences as \uXXXX escapes (kept literal too);
    # append the real decomposed forms so NFC / combining marks are exercised.
    text += "Decomposed: e\u0301te\u0301, n\u0303, A\u030a, o\u0308, cafe\u0301, Se\u0301bastien, u\u0308ber.\n"
    return text


def corpus_chunks(text: str, lines_per_chunk: int = 3):
    lines = text.splitlines(keepends=True)
    return ["".join(lines[i:i + lines_per_chunk]) for i in range(0, len(lines), lines_per_chunk)]


# ---------------------------------------------------------------------------------------------
# A. Tokenizers
# ---------------------------------------------------------------------------------------------

def _train_bytelevel(chunks, vocab_size, split_regex, nfc):
    tok = Tokenizer(models.BPE())
    if nfc:
        tok.normalizer = normalizers.NFC()
    if split_regex is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split_regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(chunks, trainer)
    return tok


def build_llama3(chunks):
    tok = _train_bytelevel(chunks, 700, LLAMA3_REGEX, nfc=False)
    j = json.loads(tok.to_str())
    j["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(j))
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]
    tok.add_special_tokens(specials)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single="<|begin_of_text|> $A:0",
                                      pair="<|begin_of_text|> $A:0 <|begin_of_text|>:1 $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    return tok, dict(bos="<|begin_of_text|>", eos="<|end_of_text|>", add_bos=True)


def build_qwen2(chunks):
    tok = _train_bytelevel(chunks, 600, QWEN2_REGEX, nfc=True)
    j = json.loads(tok.to_str())
    j["model"]["continuing_subword_prefix"] = ""  # as in Qwen2.5's tokenizer.json (same meaning as null)
    j["model"]["end_of_word_suffix"] = ""
    tok = Tokenizer.from_str(json.dumps(j))
    tok.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    return tok, dict(bos=None, eos="<|endoftext|>", add_bos=False)


def build_gpt2(chunks):
    tok = _train_bytelevel(chunks, 500, None, nfc=False)
    tok.add_special_tokens(["<|endoftext|>"])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok, dict(bos="<|endoftext|>", eos="<|endoftext|>", add_bos=False)


def _train_sp_pieces(chunks, vocab_size, limit_alphabet):
    """Train SentencePiece-style BPE pieces (words start with ▁, never merge across ▁)."""
    # The trainer's own limit_alphabet breaks frequency ties in hash order (non-deterministic), so pick
    # the alphabet here (by count, then code point) and drop the other characters from the training
    # text: they are then absent from the vocab and exercise byte fallback.
    from collections import Counter
    counts = Counter(ch for c in chunks for ch in c.replace(" ", SP))
    keep = {ch for ch, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit_alphabet]}
    keep.add(SP)
    chunks = ["".join(ch for ch in c if ch in keep or ch == " ") for c in chunks]
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SP), normalizers.Replace(" ", SP)])
    tok.pre_tokenizer = pre_tokenizers.Split(SP, behavior="merged_with_next")
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[],
                                  show_progress=False)
    tok.train_from_iterator(chunks, trainer)
    j = json.loads(tok.to_str())
    vocab = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in j["model"]["merges"]]
    return [t for t, _ in vocab], merges


def _sp_model(pieces, merges, head_tokens):
    vocab = {}
    for t in head_tokens:
        vocab[t] = len(vocab)
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for p in pieces:
        if p in vocab:
            raise SystemExit(f"piece collides with reserved token: {p!r}")
        vocab[p] = len(vocab)
    return models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True,
                      dropout=None)


def _sp_decoder():
    return decoders.Sequence([decoders.Replace(SP, " "), decoders.ByteFallback(), decoders.Fuse(),
                              decoders.Strip(" ", 1, 0)])


def build_llama2(chunks, vocab_size=600, limit_alphabet=160):
    pieces, merges = _train_sp_pieces(chunks, vocab_size, limit_alphabet)
    tok = Tokenizer(_sp_model(pieces, merges, ["<unk>", "<s>", "</s>"]))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SP), normalizers.Replace(" ", SP)])
    tok.pre_tokenizer = None
    tok.decoder = _sp_decoder()
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1",
                                                       special_tokens=[("<s>", 1)])
    return tok, dict(bos="<s>", eos="</s>", add_bos=True, unk="<unk>")


def build_mistral(chunks):
    # Mistral v0.3 layout: <unk> <s> </s>, then control tokens ([INST], [/INST], ...), then bytes.
    head = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]"]
    pieces, merges = _train_sp_pieces(chunks, 500, 140)
    tok = Tokenizer(_sp_model(pieces, merges, head))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SP, prepend_scheme="first", split=False)
    tok.decoder = _sp_decoder()
    tok.add_special_tokens(head)
    tok.post_processor = processors.TemplateProcessing(single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1",
                                                       special_tokens=[("<s>", 1)])
    return tok, dict(bos="<s>", eos="</s>", add_bos=True, unk="<unk>")


TOKENIZER_CLASS = {  # classic tokenizer_class names as found on the hub
    "llama3": "PreTrainedTokenizerFast", "qwen2": "Qwen2Tokenizer", "gpt2": "GPT2Tokenizer",
    "llama2": "LlamaTokenizer", "mistral": "LlamaTokenizer",
}


HF_OVERRIDES_PIPELINE = set()  # filled by build_tokenizers


def tokenizer_config(tok, name, meta, *, form="classic", chat_template=None):
    """tokenizer_config.json. classic: hub-style (added_tokens_decoder, chat_template inside);
    v5: what transformers 5 writes (TokenizersBackend, chat_template goes to chat_template.jinja)."""
    cfg = {}
    if form == "classic":
        cfg["add_bos_token"] = bool(meta["add_bos"])
        cfg["add_eos_token"] = False
        cfg["added_tokens_decoder"] = {
            str(i): {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized, "rstrip": t.rstrip,
                     "single_word": t.single_word, "special": t.special}
            for i, t in sorted(tok.get_added_tokens_decoder().items())}
    cfg["bos_token"] = meta["bos"]
    if chat_template is not None and form == "classic":
        cfg["chat_template"] = chat_template
    cfg["clean_up_tokenization_spaces"] = False
    cfg["eos_token"] = meta["eos"]
    if meta.get("unk"):
        cfg["unk_token"] = meta["unk"]
    if meta.get("pad"):
        cfg["pad_token"] = meta["pad"]
    cfg["model_max_length"] = 131072
    if form == "classic":
        cfg["legacy"] = False if name == "mistral" else (True if name == "llama2" else None)
        if cfg["legacy"] is None:
            del cfg["legacy"]
        cfg["tokenizer_class"] = ("PreTrainedTokenizerFast" if name in HF_OVERRIDES_PIPELINE
                                  else TOKENIZER_CLASS[name])
    else:
        cfg["add_bos_token"] = bool(meta["add_bos"])
        cfg["tokenizer_class"] = "TokenizersBackend"
    return cfg


def tokenizer_cases(name, specials):
    s0 = specials[0]
    s1 = specials[-1]
    cases = [
        "", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n ", "a", "Hello", " Hello", "Hello ", "  Hello",
        "Hello world", "Hello  world", "Hello   world   ", "   leading three", "trailing three   ",
        "The quick brown fox jumps over the lazy dog.",
        "line one\nline two\n\nline four\n",
        "tabs\tand\t\tmore\ttabs", "\tindented\n\t\tdouble",
        "    four spaces\n        eight spaces",
        "I'm you're he's she'll we'd they've it's can't won't",
        "Y'ALL'RE I'M IT'S DON'T We'Ve",
        "0", "7", "42", "123", "1234", "12345", "1234567890", "3.14159", "1,000,000", "2024-06-30 12:34:56",
        "$19.99 (22.6%)", "x=-17; y=+3.5e-7",
        "def f(x):\n    return x * 2\n",
        "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
        "{\"role\": \"user\", \"content\": \"Hi!\"}",
        "Café naïve façade résumé jalapeño Zürich Ångström Łódź",
        "e\u0301 vs \u00e9, n\u0303 vs \u00f1, A\u030a vs \u00c5",  # decomposed vs composed (NFC matters)
        "a\u0310 o\u0332 h\u0338\u0322e\u0334\u0321llo",  # combining marks
        "Καλημέρα κόσμε! Αθήνα",
        "Привет, мир! Съешь же ещё этих булок.",
        "Їжак і ґава",
        "你好，世界！今天天气很好。",
        "こんにちは、世界。カタカナ",
        "안녕하세요, 세계!",
        "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีชาวโลก",
        "😀 🚀 🔥 ✨", "👍🏽 👋🏻", "🇺🇸🇯🇵", "👨\u200d👩\u200d👧\u200d👦 family", "🏳️\u200d🌈", "❤️",
        # characters absent from the training corpus (byte fallback / rare bytes)
        "龘齉𠀋 rare CJK", "🦩🪿🫠 new emoji", "Ꭰ Cherokee ᚠ runes ⠁ braille", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛", "\u00a0nbsp\u2003emspace\u3000ideographic",
        "zero\u200bwidth", "\x00\x01\x7f control", "~`|^ ¬¦ ¤",
        # special tokens written inside the text
        f"hi{s0}there", f"{s0}", f"{s0}{s1}", f" {s0} spaced {s1} ", f"a{s1}\nb",
        f"{s0}Hello world{s1}",
        "".join(f"w{i} {t}" for i, t in enumerate(specials)) + " end",  # every added token
        "<|not_special|> <s > </ s> [INST ] <0x41>",  # look-alikes that must NOT match added tokens
        "punctuation!!! ??? ... --- *** ### @@@ ((( )))",
        "Mixed: ABC abc 123 αβγ абв 中文 😀 \t\n end",
        "the the the the the the the the",
        "ThisIsCamelCase and snake_case_name and kebab-case-name",
        "https://example.com/path?query=1&x=y#frag",
        " ".join(["word"] * 40),
    ]
    return cases


def make_cases(tok, name, specials):
    out = []
    for text in tokenizer_cases(name, specials):
        with_sp = tok.encode(text, add_special_tokens=True).ids
        without = tok.encode(text, add_special_tokens=False).ids
        out.append({
            "text": text,
            "ids_with_special": with_sp,
            "ids_without_special": without,
            "decoded": tok.decode(without, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(with_sp, skip_special_tokens=True),
        })
    return out


def write_json(path, obj, indent=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=indent)
        f.write("\n")


def check_hf_tokenizer(dirpath, tok, cases):
    """The saved files must load in transformers.AutoTokenizer and agree with `tokenizers`."""
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(dirpath))
    bad = 0
    for c in cases:
        a = hf(c["text"], add_special_tokens=True)["input_ids"]
        b = hf(c["text"], add_special_tokens=False)["input_ids"]
        if a != c["ids_with_special"] or b != c["ids_without_special"]:
            bad += 1
            if bad <= 3:
                print(f"  [{dirpath.name}] AutoTokenizer mismatch on {c['text']!r}: {a} vs {c['ids_with_special']}")
    return type(hf).__name__, bad


BUILDERS = {"llama3": build_llama3, "qwen2": build_qwen2, "gpt2": build_gpt2, "llama2": build_llama2,
            "mistral": build_mistral}


def build_tokenizers(out: Path):
    chunks = corpus_chunks(corpus_text())
    toks = {}
    for name, fn in BUILDERS.items():
        tok, meta = fn(chunks)
        # Round-trip through JSON so what we test is exactly what is on disk.
        d = out / "tokenizers" / name
        d.mkdir(parents=True, exist_ok=True)
        tok.save(str(d / "tokenizer.json"), pretty=True)
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        specials = [t.content for _, t in sorted(tok.get_added_tokens_decoder().items())]
        cases = make_cases(tok, name, specials)
        write_json(d / "cases.json", cases, indent=1)
        write_json(d / "tokenizer_config.json", tokenizer_config(tok, name, meta), indent=2)
        cls, bad = check_hf_tokenizer(d, tok, cases)
        if bad:
            # transformers 5's model-specific classes (LlamaTokenizer) rebuild the normalizer/pre-tokenizer
            # instead of using tokenizer.json's; tokenizer.json is the ground truth here, so use the
            # generic class that honours the file as written.
            print(f"  {name}: {cls} rewrites the pipeline ({bad} cases differ); using PreTrainedTokenizerFast")
            HF_OVERRIDES_PIPELINE.add(name)
            write_json(d / "tokenizer_config.json", tokenizer_config(tok, name, meta), indent=2)
            cls, bad = check_hf_tokenizer(d, tok, cases)
            if bad:
                raise SystemExit(f"{d}: AutoTokenizer ({cls}) disagrees with tokenizers on {bad} cases")
        nfb = sum(1 for c in cases if any(tok.id_to_token(i).startswith("<0x") for i in c["ids_without_special"]))
        print(f"tokenizer {name}: vocab {tok.get_vocab_size()} cases {len(cases)} hf={cls}"
              + (f" byte-fallback cases {nfb}" if name in ("llama2", "mistral") else ""))
        toks[name] = (tok, meta)
    return toks


# ---------------------------------------------------------------------------------------------
# B/C. Tiny models + references
# ---------------------------------------------------------------------------------------------

LLAMA3_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")
CHATML_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
INST_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}{%- if message['role'] == 'user' %}"
    "{{- '[INST] ' + message['content'] | trim + ' [/INST]' }}{%- elif message['role'] == 'assistant' %}"
    "{{- ' ' + message['content'] | trim + eos_token }}{%- endif %}{%- endfor %}")

MODEL_SPECS = [
    dict(name="llama3-bf16", arch="LlamaForCausalLM", tok="llama3", dtype="bfloat16", form="v5", tied=True,
         hidden=96, inter=200, layers=3, heads=8, kv=2, head_dim=None, w_std=0.25, emb_std=0.6,
         rope=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                   high_freq_factor=4.0, original_max_position_embeddings=64),
         max_pos=1024, eps=1e-5, template=LLAMA3_TEMPLATE, eos=["<|end_of_text|>", "<|eot_id|>"]),
    dict(name="llama2-fp32-sharded", arch="LlamaForCausalLM", tok="llama2", dtype="float32", form="classic",
         tied=False, hidden=72, inter=136, layers=3, heads=6, kv=6, head_dim=None, w_std=0.25, emb_std=0.6,
         rope=dict(rope_type="default", rope_theta=10000.0), max_pos=1024, eps=1e-5, shard="400KB",
         template=INST_TEMPLATE, eos=["</s>"]),
    dict(name="qwen2-fp32", arch="Qwen2ForCausalLM", tok="qwen2", dtype="float32", form="classic", tied=True,
         hidden=72, inter=136, layers=3, heads=6, kv=3, head_dim=None, w_std=0.25, emb_std=0.6, bias_std=0.3,
         rope=dict(rope_type="default", rope_theta=1000000.0), max_pos=1024, eps=1e-6,
         template=CHATML_TEMPLATE, eos=["<|endoftext|>", "<|im_end|>"]),
    dict(name="qwen3-bf16", arch="Qwen3ForCausalLM", tok="qwen2", dtype="bfloat16", form="v5", tied=False,
         hidden=64, inter=136, layers=3, heads=4, kv=2, head_dim=32, w_std=0.25, emb_std=0.6,
         rope=dict(rope_type="default", rope_theta=1000000.0), max_pos=1024, eps=1e-6,
         template=CHATML_TEMPLATE, eos=["<|im_end|>"]),
    dict(name="mistral-fp16", arch="MistralForCausalLM", tok="mistral", dtype="float16", form="classic",
         tied=False, hidden=96, inter=200, layers=3, heads=8, kv=2, head_dim=12, w_std=0.25, emb_std=0.6,
         rope=dict(rope_type="default", rope_theta=1000000.0), max_pos=1024, eps=1e-5, sliding_window=96,
         template=INST_TEMPLATE, eos=["</s>"]),
    dict(name="gpt2tok-llama-fp32", arch="LlamaForCausalLM", tok="gpt2", dtype="float32", form="classic",
         tied=True, hidden=80, inter=152, layers=3, heads=4, kv=2, head_dim=None, w_std=0.25, emb_std=0.6,
         rope=dict(rope_type="default", rope_theta=10000.0), max_pos=512, eps=1e-5, template=None,
         eos=["<|endoftext|>"]),
    # One KV head (MQA) and end-of-sequence ids 1 (config.json) and 0 (only in generation_config.json): JSON
    # numbers a loader must not read as booleans. Vocabulary rows are swapped so that greedy decoding really
    # emits both ids (see plant_eos), and reference.json gains `greedy_eos` from generate() honouring them.
    dict(name="llama-mqa-eos-fp32", arch="LlamaForCausalLM", tok="gpt2", dtype="float32", form="classic",
         tied=False, hidden=64, inter=136, layers=3, heads=4, kv=1, head_dim=None, w_std=0.2, emb_std=0.6,
         rope=dict(rope_type="default", rope_theta=10000.0), max_pos=512, eps=1e-5, template=None,
         eos=["<|endoftext|>"], eos_ids=[1], generation_eos_ids=[1, 0]),
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def padded_vocab(n):
    return (n + 7) // 8 * 8 + 8  # a little above the tokenizer (unused rows, like real checkpoints)


def make_config(spec, tok, meta):
    import transformers
    ids = lambda t: tok.token_to_id(t)  # noqa: E731
    eos = spec.get("eos_ids") or [ids(t) for t in spec["eos"]]
    kw = dict(vocab_size=padded_vocab(tok.get_vocab_size()), hidden_size=spec["hidden"],
              intermediate_size=spec["inter"], num_hidden_layers=spec["layers"],
              num_attention_heads=spec["heads"], num_key_value_heads=spec["kv"],
              max_position_embeddings=spec["max_pos"], rms_norm_eps=spec["eps"],
              tie_word_embeddings=spec["tied"], rope_parameters=dict(spec["rope"]),
              bos_token_id=ids(meta["bos"]) if meta["bos"] and meta["add_bos"] else None,
              eos_token_id=eos if len(eos) > 1 else eos[0], initializer_range=0.02)
    if spec["head_dim"]:
        kw["head_dim"] = spec["head_dim"]
    arch = spec["arch"]
    if arch == "LlamaForCausalLM":
        kw["attention_bias"] = False
        return transformers.LlamaConfig(**kw)
    if arch == "Qwen2ForCausalLM":
        return transformers.Qwen2Config(**kw, use_sliding_window=False)
    if arch == "Qwen3ForCausalLM":
        return transformers.Qwen3Config(**kw, use_sliding_window=False, attention_bias=False)
    if arch == "MistralForCausalLM":
        return transformers.MistralConfig(**kw, sliding_window=spec["sliding_window"])
    raise ValueError(arch)


def init_weights(model, spec, seed):
    """Deterministic init, scaled up from HF's 0.02 so greedy logits are decisive."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "_norm" in name or "layernorm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(spec.get("bias_std", 0.1) * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name or "lm_head" in name:
                p.copy_(spec["emb_std"] * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[1]
                p.copy_(spec["w_std"] * (64.0 / fan_in) ** 0.5 * torch.randn(p.shape, generator=g))


def to_classic_config(path: Path):
    cfg = json.loads(path.read_text())
    rp = cfg.pop("rope_parameters", None) or {}
    rp = dict(rp)
    cfg["rope_theta"] = rp.pop("rope_theta", 10000.0)
    if rp.get("rope_type", "default") != "default":
        cfg["rope_scaling"] = rp
    else:
        cfg["rope_scaling"] = None
    if "dtype" in cfg:
        cfg["torch_dtype"] = cfg.pop("dtype")
    cfg.pop("layer_types", None)  # transformers-5 addition, absent from classic hub configs
    if cfg.get("model_type") == "qwen2":
        cfg["sliding_window"] = 131072  # as in Qwen2.5 configs; ignored because use_sliding_window is false
    cfg["transformers_version"] = "4.46.0"
    path.write_text(json.dumps(dict(sorted(cfg.items())), indent=2) + "\n")


def save_tokenizer_files(d: Path, tok_dir: Path, tok, name, meta, spec):
    form = spec["form"]
    if form == "v5":
        # Exactly what transformers 5 writes: tokenizer_config.json with TokenizersBackend and
        # "backend": "tokenizers" (no add_bos_token: BOS comes from tokenizer.json's post_processor),
        # chat_template.jinja beside it, no special_tokens_map.json.
        from transformers import AutoTokenizer
        hf = AutoTokenizer.from_pretrained(str(tok_dir))
        if spec["template"] is not None:
            hf.chat_template = spec["template"]
        hf.save_pretrained(str(d))
        if (d / "tokenizer.json").read_bytes() != (tok_dir / "tokenizer.json").read_bytes():
            raise SystemExit(f"{d}: transformers re-serialised tokenizer.json differently")
        return
    shutil.copy(tok_dir / "tokenizer.json", d / "tokenizer.json")
    cfg = tokenizer_config(tok, name, meta, form=form, chat_template=spec["template"])
    write_json(d / "tokenizer_config.json", cfg, indent=2)
    if form == "v5" and spec["template"] is not None:
        (d / "chat_template.jinja").write_text(spec["template"])
    st = {}
    for k in ("bos", "eos", "unk"):
        if meta.get(k):
            st[f"{k}_token"] = meta[k]
    write_json(d / "special_tokens_map.json", st, indent=2)


def make_prompts(tok, meta, spec):
    """≥22 prompts: exact lengths hitting 16-token page edges, natural texts, a shared-prefix group."""
    text = corpus_text()
    lines = text.splitlines(keepends=True)
    add = meta["add_bos"]

    def enc(t):
        return tok.encode(t, add_special_tokens=add).ids

    prompts, texts = [], []
    lengths = [1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 48, 64, 65, 100, 127, 128, 129, 160, 200, 257, 320, 343]
    for i, L in enumerate(lengths):
        start = (i * 7) % max(1, len(lines) - 40)
        ids = enc("".join(lines[start:]))
        if len(ids) < L:
            ids = enc(text + text)
        ids = ids[:L]
        assert len(ids) == L
        prompts.append(ids)
        t = "".join(lines[start:])
        texts.append(t if tok.encode(t, add_special_tokens=add).ids == ids else None)
    natural = ["Hello", "The capital of France is", "def fibonacci(n):\n    ", "Привет! 你好 😀 Καλημέρα"]
    if spec["template"] is not None:
        from jinja2 import Template
        natural.append(Template(spec["template"]).render(
            messages=[{"role": "user", "content": "What is a paged KV cache?"}], add_generation_prompt=True,
            bos_token=meta["bos"] or "", eos_token=meta["eos"]))
    for t in natural:
        # Chat-rendered text already contains BOS; do not add it twice.
        has_bos = meta["bos"] and add and t.startswith(meta["bos"])
        prompts.append(tok.encode(t, add_special_tokens=add and not has_bos).ids)
        texts.append(t)
    prefix_ids = enc(text)[:112]
    tails = [lines[-1], lines[-2], lines[-3] + lines[-4], "A"]
    for i, tail in enumerate(tails):
        tail_ids = tok.encode(tail, add_special_tokens=False).ids[: [1, 5, 20, 40][i]]
        prompts.append(prefix_ids + tail_ids)
        texts.append(None)
    return prompts, texts


def plant_eos(model, prompts, eos_ids, step=3):
    """Relabels vocabulary rows so that greedy decoding emits each id of `eos_ids`: for prompt k, the token its
    continuation produces at step `step + 2k` trades places with eos_ids[k] in the embedding and the LM head.
    The model is the same up to that renaming; the references are then computed from the model as saved."""
    used = set(eos_ids)
    for k, eos in enumerate(eos_ids):
        for index in range(1 + k, len(prompts)):
            prompt = prompts[index]
            out, _, _ = greedy(model, prompt, step + 2 * k + 1)
            token = out[step + 2 * k]
            if token in used or token in prompt or eos in prompt or any(t in used for t in out):
                continue
            with torch.no_grad():
                for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
                    weight[[token, eos]] = weight[[eos, token]]
            used.add(token)
            break
        else:
            raise SystemExit(f"no prompt to plant EOS {eos} in")


def greedy(model, ids, n):
    out, margins = [], []
    seq = list(ids)
    first_logits = None
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([seq])).logits[0, -1].float()
            if first_logits is None:
                first_logits = logits.clone()
            top = torch.topk(logits, 2)
            nxt = int(top.indices[0])
            margins.append(float(top.values[0] - top.values[1]))
            out.append(nxt)
            seq.append(nxt)
    return out, margins, first_logits


DECISIVE = 0.02


def g6(x):
    return float(f"{x:.6g}")


def build_model(out: Path, spec, toks, seed):
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok, meta = toks[spec["tok"]]
    name = spec["name"]
    d = out / "models" / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    config = make_config(spec, tok, meta)
    torch.manual_seed(seed)
    model = getattr(transformers, spec["arch"])(config)
    init_weights(model, spec, seed)
    if spec["tied"]:
        model.tie_weights()
    generation_eos = spec.get("generation_eos_ids")
    if generation_eos:
        plant_eos(model.eval(), make_prompts(tok, meta, spec)[0], generation_eos)
    model = model.to(DTYPES[spec["dtype"]])
    model.save_pretrained(str(d), max_shard_size=spec.get("shard", "50MB"))
    if spec["form"] == "classic":
        to_classic_config(d / "config.json")
    if generation_eos:
        write_json(d / "generation_config.json", {"bos_token_id": config.bos_token_id, "eos_token_id": generation_eos,
                                                  "transformers_version": "4.46.0"}, indent=2)
    save_tokenizer_files(d, out / "tokenizers" / spec["tok"], tok, spec["tok"], meta, spec)
    del model

    # Reference: the checkpoint AS SAVED, reloaded in float32.
    torch.manual_seed(0)
    ref = AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.float32)
    ref.eval()
    cfg = ref.config
    prompts, texts = make_prompts(tok, meta, spec)
    greedy_ids, margins, last_logits = [], [], []
    for p in prompts:
        o, m, lg = greedy(ref, p, 12)
        greedy_ids.append(o)
        margins.append([g6(x) for x in m])
        last_logits.append([g6(x) for x in lg.tolist()])
    # The model folder's tokenizer files must load in AutoTokenizer and reproduce the text prompts.
    hf_tok = AutoTokenizer.from_pretrained(str(d))
    for t, p in zip(texts, prompts):
        if t is not None:
            has_bos = meta["bos"] and meta["add_bos"] and t.startswith(meta["bos"])
            got = hf_tok(t, add_special_tokens=meta["add_bos"] and not has_bos)["input_ids"]
            if got != p:
                raise SystemExit(f"{name}: AutoTokenizer gives {got[:8]}.. for prompt text {t[:30]!r}")
    # Cross-check the hand loop against HF generate (KV-cached) on a couple of prompts.
    for k in (0, len(prompts) // 2):
        gen = ref.generate(torch.tensor([prompts[k]]), max_new_tokens=12, min_new_tokens=12, do_sample=False,
                           eos_token_id=None, pad_token_id=0)
        got = gen[0, len(prompts[k]):].tolist()
        if got != greedy_ids[k]:
            print(f"  WARNING {name}: generate() {got} != loop {greedy_ids[k]} on prompt {k}")
    greedy_eos = None
    if generation_eos:
        # generate() stops at the ids of generation_config.json, as a serving engine must.
        assert list(ref.generation_config.eos_token_id) == generation_eos, ref.generation_config.eos_token_id
        greedy_eos = []
        for p, full in zip(prompts, greedy_ids):
            gen = ref.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                               max_new_tokens=12, do_sample=False, pad_token_id=generation_eos[0])
            got = gen[0, len(p):].tolist()
            stop = next((i for i, t in enumerate(full) if t in generation_eos), None)
            if got != (full if stop is None else full[:stop + 1]):
                raise SystemExit(f"{name}: generate() with EOS {got} is not the greedy loop {full} cut at EOS")
            greedy_eos.append(got)
        for eos in generation_eos:
            if not any(g and g[-1] == eos and len(g) < 12 for g in greedy_eos):
                raise SystemExit(f"{name}: no prompt stops early at EOS {eos}")
    allm = [x for m in margins for x in m]
    rope = getattr(cfg, "rope_parameters", None)
    summary = dict(architecture=spec["arch"], saved_dtype=spec["dtype"], config_form=spec["form"],
                   tokenizer=spec["tok"], tied_embeddings=spec["tied"], hidden_size=cfg.hidden_size,
                   intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.num_hidden_layers,
                   num_attention_heads=cfg.num_attention_heads, num_key_value_heads=cfg.num_key_value_heads,
                   gqa_ratio=cfg.num_attention_heads // cfg.num_key_value_heads,
                   head_dim=getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads,
                   vocab_size=cfg.vocab_size, tokenizer_vocab_size=tok.get_vocab_size(),
                   rms_norm_eps=cfg.rms_norm_eps, rope_parameters=rope,
                   sliding_window=getattr(cfg, "sliding_window", None) if spec["arch"] == "MistralForCausalLM"
                   else None,
                   attention_bias=getattr(cfg, "attention_bias", spec["arch"] == "Qwen2ForCausalLM"),
                   attn_implementation=getattr(cfg, "_attn_implementation", None),
                   shards=sorted(p.name for p in d.glob("*.safetensors")),
                   transformers_version=transformers.__version__, torch_version=torch.__version__.split("+")[0],
                   margin_min=g6(min(allm)), margin_median=g6(statistics.median(allm)),
                   distinct_tokens_per_output_median=statistics.median(len(set(o)) for o in greedy_ids))
    # Leading steps whose reference margin is >= DECISIVE: token-for-token comparison is meaningful there;
    # past a near-tie a correct implementation may legitimately pick the runner-up.
    decisive = [next((i for i, x in enumerate(m) if x < DECISIVE), len(m)) for m in margins]
    shared = dict(prefix_len=112, prompt_indices=list(range(len(prompts) - 4, len(prompts))))
    refj = dict(prompts=prompts, texts=texts, max_new_tokens=12, add_bos=meta["add_bos"], greedy=greedy_ids,
                margins=margins, decisive_threshold=DECISIVE, decisive_steps=decisive, shared_prefix_group=shared,
                last_logits=last_logits, config_summary=summary)
    if greedy_eos is not None:
        refj.update(eos_token_ids=generation_eos, greedy_eos=greedy_eos)
    write_json(d / "reference.json", refj)
    print(f"model {name}: vocab {cfg.vocab_size} prompts {len(prompts)} "
          f"(lens {min(map(len, prompts))}..{max(map(len, prompts))}) margin min {summary['margin_min']} "
          f"median {summary['margin_median']} distinct/12 median {summary['distinct_tokens_per_output_median']}")
    return summary


# ---------------------------------------------------------------------------------------------
# D. Benchmark model (~150M Llama, vocab 32000) - not a fixture
# ---------------------------------------------------------------------------------------------

def synthetic_corpus(n_words, seed=1234):
    """Deterministic pseudo-language so a 32000-piece SentencePiece-style BPE can be trained offline."""
    rnd = random.Random(seed)
    onsets = ["", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br",
              "ch", "cr", "dr", "fl", "gr", "kl", "pl", "pr", "sh", "sk", "sl", "sp", "st", "str", "th", "tr"]
    nuclei = ["a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "oo", "ou", "y"]
    codas = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "ng", "nt", "rk", "st", "x"]
    lex = []
    for _ in range(60000):
        w = "".join(rnd.choice(onsets) + rnd.choice(nuclei) + rnd.choice(codas)
                    for _ in range(rnd.choice([1, 1, 2, 2, 3, 4])))
        lex.append(w)
    weights = [1.0 / (i + 1) ** 0.9 for i in range(len(lex))]
    words = rnd.choices(lex, weights=weights, k=n_words)
    lines, i = [], 0
    while i < len(words):
        k = rnd.randint(5, 18)
        lines.append(" ".join(words[i:i + k]).capitalize() + rnd.choice([".", ",", "!", "?", ";"]))
        i += k
    return lines


def build_bench_model(outdir: Path):
    import transformers
    outdir.mkdir(parents=True, exist_ok=True)
    chunks = corpus_chunks(corpus_text()) + synthetic_corpus(400000)
    pieces, merges = _train_sp_pieces(chunks, 32000 - 259, 200)
    pad = 32000 - 259 - len(pieces)
    pieces += [f"<unused{i}>" for i in range(pad)]  # only if the corpus ran out of merges
    tok = Tokenizer(_sp_model(pieces, merges, ["<unk>", "<s>", "</s>"]))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SP), normalizers.Replace(" ", SP)])
    tok.decoder = _sp_decoder()
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1",
                                                       special_tokens=[("<s>", 1)])
    assert tok.get_vocab_size() == 32000, tok.get_vocab_size()
    tok.save(str(outdir / "tokenizer.json"))
    meta = dict(bos="<s>", eos="</s>", add_bos=True, unk="<unk>")
    HF_OVERRIDES_PIPELINE.add("llama2")  # keep AutoTokenizer faithful to tokenizer.json (see build_tokenizers)
    write_json(outdir / "tokenizer_config.json",
               tokenizer_config(tok, "llama2", meta, form="classic", chat_template=INST_TEMPLATE), indent=2)
    cfg = transformers.LlamaConfig(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                                   num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=4096,
                                   rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
                                   rope_parameters=dict(rope_type="default", rope_theta=10000.0))
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    n = sum(p.numel() for p in model.parameters())
    model.to(torch.bfloat16).save_pretrained(str(outdir))
    print(f"bench model: {n / 1e6:.1f}M params, tokenizer pieces padded: {pad}, -> {outdir}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures"))
    ap.add_argument("--bench-model", metavar="DIR", help="write the ~150M benchmark Llama to DIR and exit")
    ap.add_argument("--only", help="comma-separated model fixture names (tokenizers are always rebuilt)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    if args.bench_model:
        build_bench_model(Path(args.bench_model))
        return
    out = Path(args.out)
    toks = build_tokenizers(out)
    only = set(args.only.split(",")) if args.only else None
    summaries = {}
    for i, spec in enumerate(MODEL_SPECS):
        if only and spec["name"] not in only:
            continue
        summaries[spec["name"]] = build_model(out, spec, toks, seed=1000 + i)
    # Digest of everything written, to check determinism across runs.
    h = hashlib.sha256()
    for p in sorted(out.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(out)).encode())
            h.update(p.read_bytes())
    print("fixtures digest:", h.hexdigest())


if __name__ == "__main__":
    main()
