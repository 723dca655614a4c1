#!/usr/bin/env python3
"""The Flask + TensorFlow service morsel-serve replaces, rebuilt from issue 8's description so
the load test can run both side by side. Keep it as the users run it, slow parts included:
the model is loaded once with keras.models.load_model; every request opens the image with
Pillow, converts to RGB, resizes to 224x224 BICUBIC, divides by 255 and calls model.predict
(not predict_on_batch); Flask's own server answers (app.run, threaded, as in their image).

    python flask_app.py --model keras_model.h5 --labels labels.txt --test-image photo.jpg \
        [--host 127.0.0.1] [--port 5000]

GET /         upload form (field `file`, posting to /predict)
POST /predict `<label> (<probability>), Inference Time : <seconds> seconds`
GET /test     the same answer for the bundled test image
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from flask import Flask, request  # noqa: E402
from PIL import Image  # noqa: E402

FORM = """<!doctype html>
<html><head><title>Food classifier</title></head>
<body><h1>Food classifier</h1>
<form action="/predict" method="post" enctype="multipart/form-data">
<input type="file" name="file" accept="image/*"> <input type="submit" value="Predict">
</form></body></html>
"""


def load_keras(path):
    # The users' file is a Keras 2 .h5 loaded with tensorflow.keras, which is tf_keras today.
    errors = []
    for name in ("tf_keras", "keras"):
        try:
            mod = __import__(name)
            return mod.models.load_model(path)
        except Exception as e:  # noqa: BLE001 - report every loader's reason
            errors.append(f"{name}: {e}")
    sys.exit("flask_app: cannot load the model:\n  " + "\n  ".join(errors))


def create_app(model, labels, test_image):
    app = Flask(__name__)
    size = tuple(model.input_shape[1:3])

    def classify(f):
        img = Image.open(f).convert("RGB").resize(size, Image.BICUBIC)
        x = np.array(img) / 255
        probs = model.predict(x.reshape(1, size[0], size[1], 3)).squeeze()
        best = int(np.argmax(probs))
        return labels[best], probs[best]

    def answer(f):
        start = time.time()
        label, prob = classify(f)
        elapsed = time.time() - start
        return f"{label} ({round(prob, 2)}), Inference Time : {elapsed:.4f} seconds"

    @app.route("/", methods=["GET"])
    def index():
        return FORM

    @app.route("/predict", methods=["POST"])
    def predict():
        return answer(request.files["file"])

    @app.route("/test", methods=["GET"])
    def test():
        return answer(test_image)

    return app


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--test-image", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5000)
    a = ap.parse_args()
    with open(a.labels, encoding="utf-8") as fh:
        labels = [line.strip() for line in fh if line.strip()]
    model = load_keras(a.model)
    app = create_app(model, labels, a.test_image)
    print(f"flask_app: serving on http://{a.host}:{a.port}", flush=True)
    app.run(host=a.host, port=a.port, debug=False)


if __name__ == "__main__":
    main()
