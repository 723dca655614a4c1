"""A live Keras 3 functional model (the keras.applications kind) as an ONNX graph with Keras's
semantics, so ONNX Runtime and OpenVINO race Morsel on the same network. For the layers of
ResNet50V2, Xception and EfficientNetB0; anything else raises NotImplementedError rather than
guess. The graph input 'input' is NHWC like Keras; it is transposed once to NCHW, every op runs
in NCHW and the output is 'probs'. race.py checks every file against Keras before timing it.

    onnx_model, macs = convert(keras_model)
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def _tf_pads(hw, k, s, d, padding):
    """NCHW pads [top, left, bottom, right] and output size of TF 'same'/'valid' (TF puts the odd
    padding pixel at the bottom/right)."""
    begin, end, out = [], [], []
    for i in range(2):
        ek = (k[i] - 1) * d[i] + 1
        if padding == "valid":
            o, tot = (hw[i] - ek) // s[i] + 1, 0
        elif padding == "same":
            o = -(-hw[i] // s[i])
            tot = max((o - 1) * s[i] + ek - hw[i], 0)
        else:
            raise NotImplementedError(f"padding {padding}")
        begin.append(tot // 2)
        end.append(tot - tot // 2)
        out.append(o)
    return begin + end, out


def _inbound(layer_cfg):
    """Names of the layers feeding this one, in argument order (Keras 3 config format)."""
    names = []

    def walk(a):
        if isinstance(a, dict):
            if a.get("class_name") == "__keras_tensor__":
                names.append(a["config"]["keras_history"][0])
            else:
                for v in a.values():
                    walk(v)
        elif isinstance(a, (list, tuple)):
            for v in a:
                walk(v)

    nodes = layer_cfg.get("inbound_nodes", [])
    if len(nodes) > 1:
        raise NotImplementedError(f"shared layer {layer_cfg['config']['name']}")
    for n in nodes:
        walk(n.get("args", []))
    return names


class _Graph:
    def __init__(self):
        self.nodes, self.inits, self.count, self.macs = [], [], 0, 0
        self.shape = {}  # tensor name -> Keras shape without batch (H, W, C) or (C,)

    def name(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, base, a):
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(a, np.float32), n))
        return n

    def int_const(self, base, a):
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(a, np.int64), n))
        return n

    def op(self, kind, inputs, shape, **attrs):
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        self.shape[out] = tuple(shape)
        return out

    def activation(self, x, act):
        name = getattr(act, "__name__", str(act))
        s = self.shape[x]
        if name == "linear":
            return x
        if name == "relu":
            return self.op("Relu", [x], s)
        if name == "relu6":
            return self.op("Clip", [x, self.const("lo", np.float32(0)),
                                    self.const("hi", np.float32(6))], s)
        if name == "sigmoid":
            return self.op("Sigmoid", [x], s)
        if name in ("silu", "swish"):
            return self.op("Mul", [x, self.op("Sigmoid", [x], s)], s)
        if name == "tanh":
            return self.op("Tanh", [x], s)
        if name == "softmax":
            if len(s) != 1:
                raise NotImplementedError("softmax on a feature map")
            return self.op("Softmax", [x], s, axis=1)
        raise NotImplementedError(f"activation {name}")

    def conv(self, x, kernel, bias, k, s, d, padding, group):
        """kernel in ONNX layout [cout, cin/group, kh, kw]."""
        h, w, cin = self.shape[x]
        pads, out = _tf_pads((h, w), k, s, d, padding)
        ins = [x, self.const("w", kernel)] + ([self.const("b", bias)] if bias is not None else [])
        cout = kernel.shape[0]
        self.macs += out[0] * out[1] * cout * k[0] * k[1] * (cin // group)
        return self.op("Conv", ins, (out[0], out[1], cout), kernel_shape=list(k), strides=list(s),
                       dilations=list(d), pads=pads, group=group)


def _layer(g, layer, cls, ins):
    x = ins[0]
    shp = g.shape[x]
    wts = layer.get_weights()
    if cls in ("Dropout", "SpatialDropout2D", "GaussianNoise"):
        return x
    if cls == "Conv2D":
        if getattr(layer, "groups", 1) != 1:
            raise NotImplementedError("grouped Conv2D")
        kern = wts[0].transpose(3, 2, 0, 1)
        y = g.conv(x, kern, wts[1] if layer.use_bias else None, _pair(layer.kernel_size),
                   _pair(layer.strides), _pair(layer.dilation_rate), layer.padding, 1)
        return g.activation(y, layer.activation)
    if cls in ("DepthwiseConv2D", "SeparableConv2D"):
        kh, kw, cin, dm = wts[0].shape
        # TF's depthwise output channel c*dm + m is ONNX's grouped conv with group = cin.
        kern = wts[0].reshape(kh, kw, cin * dm).transpose(2, 0, 1)[:, None]
        sep = cls == "SeparableConv2D"
        bias = None if sep or not layer.use_bias else wts[1]
        y = g.conv(x, kern, bias, (kh, kw), _pair(layer.strides), _pair(layer.dilation_rate),
                   layer.padding, cin)
        if sep:
            point = wts[1].transpose(3, 2, 0, 1)
            y = g.conv(y, point, wts[2] if layer.use_bias else None, (1, 1), (1, 1), (1, 1),
                       "valid", 1)
        return g.activation(y, layer.activation)
    if cls == "BatchNormalization":
        c = shp[-1]
        it = iter(wts)
        gamma = next(it) if layer.scale else np.ones(c, np.float32)
        beta = next(it) if layer.center else np.zeros(c, np.float32)
        mean, var = next(it), next(it)
        if len(shp) != 3:
            raise NotImplementedError("BatchNormalization on a vector")
        return g.op("BatchNormalization", [x, g.const("g", gamma), g.const("b", beta),
                                           g.const("m", mean), g.const("v", var)], shp,
                    epsilon=float(layer.epsilon))
    if cls == "Activation":
        return g.activation(x, layer.activation)
    if cls == "ReLU":
        if layer.negative_slope or layer.threshold:
            raise NotImplementedError("leaky/thresholded ReLU")
        if layer.max_value is None:
            return g.op("Relu", [x], shp)
        return g.op("Clip", [x, g.const("lo", np.float32(0)),
                             g.const("hi", np.float32(layer.max_value))], shp)
    if cls in ("Add", "Multiply"):
        kind = {"Add": "Add", "Multiply": "Mul"}[cls]
        y = ins[0]
        for other in ins[1:]:
            # NCHW broadcasting of a (1, 1, C) map is ONNX's own: [N,C,1,1] against [N,C,H,W].
            out = max((g.shape[y], g.shape[other]), key=lambda s: int(np.prod(s)))
            y = g.op(kind, [y, other], out)
        return y
    if cls == "ZeroPadding2D":
        (t, b), (l, r) = layer.padding
        return g.op("Pad", [x, g.int_const("pads", [0, 0, t, l, 0, 0, b, r])],
                    (shp[0] + t + b, shp[1] + l + r, shp[2]), mode="constant")
    if cls in ("MaxPooling2D", "AveragePooling2D"):
        k, s = _pair(layer.pool_size), _pair(layer.strides)
        pads, out = _tf_pads(shp[:2], k, s, (1, 1), layer.padding)
        if cls == "MaxPooling2D":
            return g.op("MaxPool", [x], (out[0], out[1], shp[2]), kernel_shape=list(k),
                        strides=list(s), pads=pads)
        # TF 'same' average pooling divides by the taps inside the image.
        return g.op("AveragePool", [x], (out[0], out[1], shp[2]), kernel_shape=list(k),
                    strides=list(s), pads=pads, count_include_pad=0)
    if cls in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        kind = "GlobalAveragePool" if "Average" in cls else "GlobalMaxPool"
        y = g.op(kind, [x], (1, 1, shp[2]))
        if layer.keepdims:
            return y
        return g.op("Flatten", [y], (shp[2],), axis=1)
    if cls == "Reshape":
        target = tuple(layer.target_shape)
        if len(shp) == 3:
            x = g.op("Transpose", [x], shp, perm=[0, 2, 3, 1])
        y = g.op("Reshape", [x, g.int_const("shape", [-1, *target])], target)
        if len(target) == 3:
            y = g.op("Transpose", [y], target, perm=[0, 3, 1, 2])
        return y
    if cls == "Flatten":
        if len(shp) == 3 and shp[:2] != (1, 1):
            x = g.op("Transpose", [x], shp, perm=[0, 2, 3, 1])
        return g.op("Flatten", [x], (int(np.prod(shp)),), axis=1)
    if cls == "Rescaling":
        c = shp[-1]
        scale = np.broadcast_to(np.asarray(layer.scale, np.float32), (c,))
        offset = np.broadcast_to(np.asarray(layer.offset, np.float32), (c,))
        y = g.op("Mul", [x, g.const("scale", scale.reshape(1, c, 1, 1))], shp)
        return g.op("Add", [y, g.const("offset", offset.reshape(1, c, 1, 1))], shp)
    if cls == "Normalization":
        # Keras 3: (x - mean) / max(sqrt(variance), epsilon)
        if getattr(layer, "invert", False):
            raise NotImplementedError("inverted Normalization")
        c = shp[-1]
        mean = np.asarray(layer.mean, np.float32).reshape(-1)
        var = np.asarray(layer.variance, np.float32).reshape(-1)
        mean, var = np.broadcast_to(mean, (c,)), np.broadcast_to(var, (c,))
        import keras
        den = np.maximum(np.sqrt(var), np.float32(keras.config.epsilon())).astype(np.float32)
        y = g.op("Sub", [x, g.const("mean", mean.reshape(1, c, 1, 1))], shp)
        return g.op("Div", [y, g.const("std", den.reshape(1, c, 1, 1))], shp)
    if cls == "Dense":
        if len(shp) != 1:
            raise NotImplementedError("Dense on a feature map")
        kern = wts[0]
        g.macs += kern.shape[0] * kern.shape[1]
        ins = [x, g.const("w", kern.T)] + ([g.const("b", wts[1])] if layer.use_bias else [])
        y = g.op("Gemm", ins, (kern.shape[1],), transB=1)
        return g.activation(y, layer.activation)
    raise NotImplementedError(f"layer {cls} ({layer.name})")


def convert(model):
    """(onnx.ModelProto, multiply-accumulates of one image)."""
    cfg = model.get_config()
    ins_cfg, outs_cfg = cfg["input_layers"], cfg["output_layers"]
    # Keras 3 writes a single [name, node, index] for a model of one input (or output).
    ins_cfg = [ins_cfg] if isinstance(ins_cfg[0], str) else ins_cfg
    outs_cfg = [outs_cfg] if isinstance(outs_cfg[0], str) else outs_cfg
    if len(ins_cfg) != 1 or len(outs_cfg) != 1:
        raise NotImplementedError("one input and one output only")
    g, out_of = _Graph(), {}
    inputs = []
    for lc in cfg["layers"]:
        cls, name = lc["class_name"], lc["config"]["name"]
        if cls == "InputLayer":
            _, h, w, c = lc["config"]["batch_shape"]
            inputs.append(helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                        ["N", h, w, c]))
            g.shape["input"] = (h, w, c)
            out_of[name] = g.op("Transpose", ["input"], (h, w, c), perm=[0, 3, 1, 2])
            continue
        ins = [out_of[n] for n in _inbound(lc)]
        out_of[name] = _layer(g, model.get_layer(name), cls, ins)
    final = out_of[outs_cfg[0][0]]
    g.nodes.append(helper.make_node("Identity", [final], ["probs"], name="probs"))
    outputs = [helper.make_tensor_value_info("probs", TensorProto.FLOAT,
                                             ["N", *g.shape[final]])]
    graph = helper.make_graph(g.nodes, model.name, inputs, outputs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                          producer_name="morsel test/bench/keras_onnx.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m, g.macs
