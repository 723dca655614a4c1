/* GET /v1/models/<name> and /metadata: TF-Serving's status and signature shapes, so its clients
 * parse them, plus a "morsel" object with what a deployment wants to check (input, preprocessing,
 * labels, which file exactly, which exporter). */
#include <pthread.h>
#include <stdio.h>

#include <jansson.h>
#include <nettle/sha2.h>

#include "server.h"

static char sha_hex[2 * SHA256_DIGEST_SIZE + 1];
static pthread_once_t sha_once = PTHREAD_ONCE_INIT;

/* Hashing 10 MB costs tens of ms, too much for the start-up budget: done on first request. */
static void compute_sha(void)
{
    FILE *f = fopen(g_srv.cfg.model, "rb");
    if (!f) {
        snprintf(sha_hex, sizeof sha_hex, "unreadable");
        return;
    }
    struct sha256_ctx c;
    sha256_init(&c);
    uint8_t buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        sha256_update(&c, n, buf);
    fclose(f);
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&c, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
        snprintf(sha_hex + 2 * i, 3, "%02x", d[i]);
}

const char *meta_sha256(void)
{
    pthread_once(&sha_once, compute_sha);
    return sha_hex;
}

void *meta_status_json(void)
{
    const char *state = g_srv.ready ? "AVAILABLE" : "FAILED";
    return json_pack("{s:[{s:s, s:s, s:{s:s, s:s}}]}", "model_version_status", "version", "1",
                     "state", state, "status", "error_code", g_srv.ready ? "OK" : "FAILED_PRECONDITION",
                     "error_message", g_srv.ready ? "" : g_srv.selftest_msg);
}

static const char *filter_name(morsel_resize_filter f)
{
    static const char *names[] = {"nearest", "bilinear", "bicubic", "lanczos", "box"};
    return (unsigned)f < 5 ? names[f] : "unknown";
}

static const char *str(const char *s)
{
    return s ? s : "";
}

void *meta_metadata_json(void)
{
    const morsel_model_info *in = &g_srv.info;
    const morsel_preprocess *pp = &in->preprocess;
    json_t *labels = json_array();
    for (int i = 0; i < in->n_outputs; i++)
        json_array_append_new(labels, json_string(str(morsel_model_label(g_srv.model, i))));
    static const char *kinds[] = {"softmax", "sigmoid", "raw"};
    char crc[16], version[16], classes[16];
    snprintf(classes, sizeof classes, "%d", in->n_outputs);
    snprintf(crc, sizeof crc, "%08x", g_srv.header_crc);
    snprintf(version, sizeof version, "%u.%u", in->version_major, in->version_minor);

    json_t *sig = json_pack(
        "{s:{s:{s:s, s:{s:[{s:s, s:s}], s:b}, s:s}}, s:{s:{s:s, s:{s:[{s:s, s:s}, {s:s, s:s}], s:b}, s:s}}, s:s}",
        "inputs", "b64", "dtype", "DT_STRING", "tensor_shape", "dim", "size", "-1", "name", "",
        "unknown_rank", 0, "name", "image_bytes",
        "outputs", "probabilities", "dtype", "DT_FLOAT", "tensor_shape", "dim", "size", "-1",
        "name", "", "size", classes, "name", "", "unknown_rank", 0, "name", "probabilities",
        "method_name", "tensorflow/serving/predict");
    json_t *morsel = json_pack(
        "{s:{s:i, s:i, s:i}, s:{s:s, s:b, s:s, s:[f,f,f], s:[f,f,f]}, s:o, s:s, s:{s:s, s:I, s:s, s:s},"
        " s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}",
        "input", "height", in->input_h, "width", in->input_w, "channels", in->input_c,
        "preprocessing", "resize", filter_name(pp->filter), "center_crop", pp->center_crop,
        "channel_order", pp->bgr ? "BGR" : "RGB", "scale", (double)pp->scale[0],
        (double)pp->scale[1], (double)pp->scale[2], "offset", (double)pp->offset[0],
        (double)pp->offset[1], (double)pp->offset[2],
        "labels", labels, "output_kind", (unsigned)in->output_kind < 3 ? kinds[in->output_kind] : "unknown",
        "file", "path", g_srv.cfg.model, "bytes", (json_int_t)in->file_bytes, "sha256", meta_sha256(),
        "header_crc32", crc,
        "format_version", version, "model_name", str(in->name), "exporter_version",
        str(in->exporter_version), "keras_version", str(in->keras_version), "source", str(in->source),
        "source_format", str(in->source_format), "license", str(in->license), "params",
        (json_int_t)in->n_params, "isa", str(in->isa));
    return json_pack("{s:{s:s, s:s, s:s}, s:{s:{s:{s:o}}}, s:o}", "model_spec", "name",
                     g_srv.cfg.model_name, "signature_name", "", "version", "1", "metadata",
                     "signature_def", "signature_def", "serving_default", sig, "morsel", morsel);
}
