/*
 * SHA-256 whose running state can be saved and loaded, at OpenSSL's speed (SHA instructions where
 * the CPU has them). node:crypto computes at the same speed but never exposes its state, and a
 * resumable upload must save the state with each chunk's offset. This calls the OpenSSL that Node
 * itself links (its symbols are exported to addons) through its public, stable SHA256_CTX; the
 * context is the saved state. Built at install by scripts/build-native.js; without it stowage
 * falls back to hash-wasm (a third of the speed).
 */
#include <stddef.h>
#include <string.h>
#define NAPI_VERSION 8
#include <node_api.h>

/* OpenSSL's SHA256_CTX (openssl/sha.h), declared here so only Node's N-API headers are needed. */
typedef struct {
  unsigned int h[8];
  unsigned int Nl, Nh;
  unsigned int data[16];
  unsigned int num, md_len;
} SHA256_CTX;
int SHA256_Init(SHA256_CTX *c);
int SHA256_Update(SHA256_CTX *c, const void *data, size_t len);
int SHA256_Final(unsigned char *md, SHA256_CTX *c);

#define CHECK(call) \
  if ((call) != napi_ok) { napi_throw_error(env, NULL, "sha256: " #call " failed"); return NULL; }

/* The context buffer `arg`, or NULL (with an exception) when it is not one. */
static SHA256_CTX *context(napi_env env, napi_value arg) {
  void *data; size_t len;
  bool is_buffer = false;
  if (napi_is_buffer(env, arg, &is_buffer) != napi_ok || !is_buffer) { napi_throw_type_error(env, NULL, "sha256: expected a state buffer"); return NULL; }
  if (napi_get_buffer_info(env, arg, &data, &len) != napi_ok || len != sizeof(SHA256_CTX)) { napi_throw_type_error(env, NULL, "sha256: state of the wrong size"); return NULL; }
  return (SHA256_CTX *)data;
}

/* init(): a new state buffer. */
static napi_value init(napi_env env, napi_callback_info info) {
  napi_value buf; void *data;
  CHECK(napi_create_buffer(env, sizeof(SHA256_CTX), &data, &buf));
  SHA256_Init((SHA256_CTX *)data);
  return buf;
}

/* update(state, bytes): hashes bytes into state, in place. */
static napi_value update(napi_env env, napi_callback_info info) {
  size_t argc = 2; napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, NULL, "sha256: update(state, bytes)"); return NULL; }
  SHA256_CTX *c = context(env, argv[0]);
  if (!c) return NULL;
  bool is_typed = false;
  CHECK(napi_is_typedarray(env, argv[1], &is_typed));
  if (!is_typed) { napi_throw_type_error(env, NULL, "sha256: bytes must be a Buffer or Uint8Array"); return NULL; }
  napi_typedarray_type type; size_t length; void *data; napi_value ab; size_t offset;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, &ab, &offset));
  if (type != napi_uint8_array) { napi_throw_type_error(env, NULL, "sha256: bytes must be a Buffer or Uint8Array"); return NULL; }
  SHA256_Update(c, data, length);
  return NULL;
}

/* digest(state): the 32-byte digest; the state is left as it was. */
static napi_value digest(napi_env env, napi_callback_info info) {
  size_t argc = 1; napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) { napi_throw_type_error(env, NULL, "sha256: digest(state)"); return NULL; }
  SHA256_CTX *c = context(env, argv[0]);
  if (!c) return NULL;
  SHA256_CTX copy;
  memcpy(&copy, c, sizeof copy);
  napi_value buf; void *out;
  CHECK(napi_create_buffer(env, 32, &out, &buf));
  SHA256_Final((unsigned char *)out, &copy);
  return buf;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "init", NULL, init, NULL, NULL, NULL, napi_default, NULL },
    { "update", NULL, update, NULL, NULL, NULL, napi_default, NULL },
    { "digest", NULL, digest, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_value size;
  if (napi_define_properties(env, exports, 3, props) != napi_ok) return NULL;
  if (napi_create_uint32(env, sizeof(SHA256_CTX), &size) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "stateSize", size) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
