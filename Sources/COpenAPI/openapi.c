// The OpenAPI document, compiled in with C23 #embed (Package.swift sets
// cLanguageStandard to C2x). clang lists the embedded file in the object's
// dependency file, so editing docs/openapi.yaml rebuilds this.
#include "COpenAPI.h"

static const unsigned char document[] = {
#embed "../../docs/openapi.yaml"
};

const unsigned char *COpenAPI_document(void) { return document; }

size_t COpenAPI_document_length(void) { return sizeof(document); }
