#ifndef CCRYPTO_SHIM_H
#define CCRYPTO_SHIM_H

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
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

// MARK: - Asymmetric keys

/// The selections for EVP_PKEY_fromdata (macros built from other macros).
static const int CCrypto_EVP_PKEY_PUBLIC_KEY = EVP_PKEY_PUBLIC_KEY;
static const int CCrypto_EVP_PKEY_KEYPAIR = EVP_PKEY_KEYPAIR;

/// A PEM passphrase callback that declines: an encrypted key then fails to
/// load, where a NULL callback would prompt on the terminal.
static inline int CCrypto_no_passphrase(char *buffer, int size, int rwflag, void *user) {
    (void)buffer;
    (void)size;
    (void)rwflag;
    (void)user;
    return -1;
}

/// The first PEM private key in `bio`: PKCS#8 ("PRIVATE KEY") or a
/// traditional "RSA PRIVATE KEY" / "EC PRIVATE KEY"; never prompts. NULL on
/// failure, with the reason on the OpenSSL error queue.
static inline EVP_PKEY *CCrypto_PEM_read_private_key(BIO *bio) {
    return PEM_read_bio_PrivateKey(bio, NULL, CCrypto_no_passphrase, NULL);
}

/// The first PEM SubjectPublicKeyInfo ("PUBLIC KEY") in `bio`. NULL on failure.
static inline EVP_PKEY *CCrypto_PEM_read_public_key(BIO *bio) {
    return PEM_read_bio_PUBKEY(bio, NULL, CCrypto_no_passphrase, NULL);
}

/// What a memory BIO holds (BIO_get_mem_data is a macro); the length, or <= 0.
static inline long CCrypto_BIO_mem_contents(BIO *bio, const char **contents) {
    return BIO_get_mem_data(bio, contents);
}

// EVP_PKEY_Q_keygen is variadic: one wrapper per key type.

/// A new RSA key of `bits` bits with the default public exponent 65537.
static inline EVP_PKEY *CCrypto_generate_rsa(size_t bits) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
}

/// A new EC key on the named curve ("P-256").
static inline EVP_PKEY *CCrypto_generate_ec(const char *curve) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

/// A new Ed25519 key.
static inline EVP_PKEY *CCrypto_generate_ed25519(void) {
    return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

#endif
