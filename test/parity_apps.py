"""The keras.applications enumeration of parity_table.py --apps (issue 11): one case per image
classifier the installed Keras 3 exposes, plus the ones only tf_keras has (RegNetX/Y, ResNetRS),
found by listing the modules, so a newer Keras adds rows by itself.

Each classifier gets a row at the smallest input it accepts in every format Keras writes for it
(.keras and Keras-3 .h5 when Keras 3 has it, tf_keras .h5 when tf_keras has it), and one row at
its default size as .keras (N_DEFAULT inputs). Sizes are asked of the application itself:
keras.applications checks its input through imagenet_utils.obtain_input_shape(default_size,
min_size, ...), which is intercepted here for one call instead of building the model.
"""

import importlib
import inspect
import re

import parity_models as P

# preprocess_input's mode per application module (the random inputs are drawn in that range;
# the models with in-model preprocessing take raw 0..255 pixels).
MODES = {"resnet": "caffe", "vgg16": "caffe", "vgg19": "caffe", "densenet": "torch",
         "efficientnet": "raw", "efficientnet_v2": "raw", "convnext": "raw",
         "mobilenet_v3": "raw", "regnet": "raw", "resnet_rs": "raw"}
# Keyword variants worth their own rows (a distinct graph, not just a width).
VARIANTS = {"MobileNetV3Small": [{"minimalistic": True}],
            "MobileNetV3Large": [{"minimalistic": True}]}
# Small-size rows that use more than the smallest input the application accepts. At 32 px
# EfficientNetV2M/L run their last 23/32 blocks on 1x1 feature maps, where BatchNormalization
# statistics fitted over the batch alone make the random network chaotic: a 1e-6 input
# perturbation moved the logits by 2e-2 (M) and 35 % (L), Keras-f32 itself landed up to 1.4
# from Keras-f64, and no float32 engine can be judged. At 64 px the same perturbation moves
# them by 5e-6 and 9e-6 (parity_models.CHAOTIC makes such a row fail rather than pass
# vacuously).
SMALL_SIZE = {"EfficientNetV2M": 64, "EfficientNetV2L": 64}
HEADS = ["gap_dense_bn", "spatial_stack", "flatten_sigmoid"]
N_DEFAULT = 3


class _Probe(Exception):
    pass


def classifiers(k):
    """name -> function for every image classifier in k.applications (CamelCase callables)."""
    apps = k.applications
    return {n: getattr(apps, n) for n in sorted(dir(apps))
            if n[:1].isupper() and callable(getattr(apps, n))}


def sizes(k, fn):
    """(default size, smallest size) the application declares, without building it."""
    iu = importlib.import_module(k.__name__ + ".src.applications.imagenet_utils")
    orig = iu.obtain_input_shape
    seen = {}

    def spy(*a, **kw):
        b = inspect.signature(orig).bind(*a, **kw)
        seen.update(b.arguments)
        raise _Probe()

    iu.obtain_input_shape = spy
    try:
        fn(weights=None, include_top=False, input_shape=None)
    except _Probe:
        pass
    except Exception:  # an application that checks its input otherwise: its own message
        pass
    finally:
        iu.obtain_input_shape = orig
    if "default_size" in seen:
        return int(seen["default_size"]), int(seen["min_size"])
    try:
        fn(weights=None, include_top=False, input_shape=(1, 1, 3))
    except ValueError as e:
        m = re.search(r"at least (\d+)x", str(e))
        if m:
            return 224, int(m.group(1))
    raise RuntimeError(f"{fn.__name__}: cannot tell its input sizes")


def mode_of(fn):
    return MODES.get(fn.__module__.rsplit(".", 1)[-1], "tf")


def app_cases(keras, tf_keras, quick, make_case, log=print):
    """make_case(title, arch_fn_name, size, mode, formats, head_kind, extra) -> Case.
    Small-size rows first (cheapest first within them), then the default-size rows."""
    k3, k2 = classifiers(keras), classifiers(tf_keras)
    found = sorted(set(k3) | set(k2))
    log(f"keras {keras.__version__}: {len(k3)} classifiers; tf_keras {tf_keras.__version__}: "
        f"{len(set(k2) - set(k3))} more ({', '.join(sorted(set(k2) - set(k3)))})")
    small, default = [], []
    for i, name in enumerate(found):
        k, fn = (keras, k3[name]) if name in k3 else (tf_keras, k2[name])
        dflt, smallest = sizes(k, fn)
        smallest = max(smallest, SMALL_SIZE.get(name, 0))
        fmts = ([".keras", ".h5 K3"] if name in k3 else []) + ([".h5 K2"] if name in k2 else [])
        for extra in [{}] + VARIANTS.get(name, []):
            title = name + "".join(f" {a}" for a in extra) + ("" if name in k3 else " (tf_keras)")
            head = HEADS[i % len(HEADS)]
            small.append(make_case(title, name, smallest, mode_of(fn), fmts, head, extra))
            fmt_d = [".keras"] if name in k3 else [".h5 K2"]
            default.append(make_case(title, name, dflt, mode_of(fn), fmt_d, "gap_dense_bn",
                                     extra, n_inputs=N_DEFAULT))
    log(f"found {len(found)}: {', '.join(found)}")
    order = {n: j for j, n in enumerate(found)}
    small.sort(key=lambda c: (c.size, cost(c.kw["arch"]), order[c.kw["arch"]]))
    default.sort(key=lambda c: (c.size, cost(c.kw["arch"]), order[c.kw["arch"]]))
    return small + ([] if quick else default)


def cost(name):
    """0 cheap, 1 medium, 2 heavy (hundreds of MB of weights, minutes per row): the order rows
    run in, so that an interrupted run has covered every kind of network first."""
    return 0 if name in CHEAP else 2 if re.search(HEAVY, name) else 1


HEAVY = r"Large|Base|B[4-7]$|V2[SML]$|RS[234]\d0$|[XY](064|080|120|160|320)$"
# Quick to build and run, and between them every kind of block these applications use.
CHEAP = {"MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0",
         "EfficientNetV2B0", "DenseNet121", "ConvNeXtTiny", "NASNetMobile", "RegNetX002",
         "RegNetY002", "ResNetRS50", "ResNet50", "ResNet50V2", "VGG16"}
