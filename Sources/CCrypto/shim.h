#ifndef CCRYPTO_SHIM_H
#define CCRYPTO_SHIM_H

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/err.h>

/// OSSL_PARAM_construct_utf8_string takes a non-const char*; this keeps the
/// cast on the C side.
static inline OSSL_PARAM CCrypto_param_utf8(const char *key, const char *value) {
    return OSSL_PARAM_construct_utf8_string(key, (char *)value, 0);
}

static inline OSSL_PARAM CCrypto_param_end(void) {
    return OSSL_PARAM_construct_end();
}

/// A new HMAC context for the digest named `digest_name` ("SHA256", ...),
/// keyed with `key`. The OSSL_PARAM only borrows `digest_name`, so it is built
/// and consumed here, inside one call. Returns NULL on failure, with the
/// reason left on the OpenSSL error queue.
static inline EVP_MAC_CTX *CCrypto_hmac_ctx_new(const char *digest_name, const unsigned char *key,
                                                size_t key_length) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL) {
        return NULL;
    }
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context holds its own reference */
    if (ctx == NULL) {
        return NULL;
    }
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest_name, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, key, key_length, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

#endif
