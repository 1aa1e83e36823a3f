"""Run the SetFit library on one few-shot job, in its own process (``bench/fewshot.py``).

SetFit and its dependencies (datasets, accelerate, pandas, ...) are not headstart's: they
live in a separate folder put on ``PYTHONPATH`` (see ``bench/fewshot.py --help``), and
this script is the only code that imports them. Reads a job as JSON on stdin, prints the
result as JSON: test accuracy, and the seconds for training and for predicting.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    job = json.load(sys.stdin)
    import torch

    torch.set_num_threads(int(job.get("threads", 2)))
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    t0 = time.perf_counter()
    model = SetFitModel.from_pretrained(job["body"], local_files_only=True)
    train = Dataset.from_dict({"text": job["train_texts"], "label": job["train_labels"]})
    import tempfile

    scratch = tempfile.TemporaryDirectory(prefix="setfit-")  # its Trainer saves checkpoints
    args = TrainingArguments(
        output_dir=scratch.name,
        batch_size=16,
        num_epochs=1,
        seed=job["seed"],
        report_to="none",
        show_progress_bar=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train)
    t1 = time.perf_counter()
    trainer.train()
    t2 = time.perf_counter()
    pred = model.predict(job["test_texts"], batch_size=64)
    t3 = time.perf_counter()
    pred = [int(p) for p in pred]
    acc = sum(p == y for p, y in zip(pred, job["test_labels"], strict=True)) / len(pred)
    print(
        json.dumps(
            {"accuracy": acc, "load_s": t1 - t0, "train_s": t2 - t1, "predict_s": t3 - t2},
        )
    )


if __name__ == "__main__":
    main()
