#ifndef CLIBPQ_SHIM_H
#define CLIBPQ_SHIM_H
// libpq-dev puts its headers in /usr/include/postgresql: pkg-config's
// `libpq` names that directory for SwiftPM.
#include <libpq-fe.h>

/// The PG_DIAG_* field codes are character-literal macros Swift does not
/// import; these read the three fields the store needs from a failed result.
/// Each returns NULL when the result has no such field.
static inline const char *CLibPQ_sqlstate(const PGresult *result) {
    return PQresultErrorField(result, PG_DIAG_SQLSTATE);
}

static inline const char *CLibPQ_primaryMessage(const PGresult *result) {
    return PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
}

static inline const char *CLibPQ_constraintName(const PGresult *result) {
    return PQresultErrorField(result, PG_DIAG_CONSTRAINT_NAME);
}
#endif
