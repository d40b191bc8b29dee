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

#endif
