#ifndef COPENAPI_H
#define COPENAPI_H

#include <stddef.h>

/// docs/openapi.yaml as it was when the binary was built, byte for byte (not
/// NUL-terminated), so the service serves its contract with nothing beside it.
const unsigned char *COpenAPI_document(void);

/// The length of COpenAPI_document() in bytes.
size_t COpenAPI_document_length(void);

#endif
