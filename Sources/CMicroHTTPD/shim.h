#ifndef CMICROHTTPD_SHIM_H
#define CMICROHTTPD_SHIM_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

/// MHD_start_daemon is variadic, which Swift cannot call: every option goes
/// through one MHD_OPTION_ARRAY of `struct MHD_OptionItem`, ended by MHD_OPTION_END.
static inline struct MHD_Daemon *CMicroHTTPD_start(
    unsigned int flags, uint16_t port,
    MHD_AcceptPolicyCallback accept_policy, void *accept_policy_cls,
    MHD_AccessHandlerCallback handler, void *handler_cls,
    struct MHD_OptionItem *options) {
    return MHD_start_daemon(flags, port, accept_policy, accept_policy_cls, handler, handler_cls,
                            MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}

/// The port the daemon is bound to (useful after asking for port 0).
static inline uint16_t CMicroHTTPD_bound_port(struct MHD_Daemon *daemon) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info == NULL ? 0 : info->port;
}

/// The connection's peer address, or NULL.
static inline const struct sockaddr *CMicroHTTPD_client_address(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return info == NULL ? NULL : info->client_addr;
}

/// The connection's socket, or -1.
static inline int CMicroHTTPD_connection_socket(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    return info == NULL ? -1 : info->connect_fd;
}

/// What MHD_OPTION_NOTIFY_CONNECTION's callback stored for the connection, or NULL.
static inline void *CMicroHTTPD_socket_context(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info == NULL ? NULL : info->socket_context;
}

/// MHD_OPTION_NOTIFY_CONNECTION, like MHD_OPTION_NOTIFY_COMPLETED: the callback
/// in `value`, its closure in `ptr_value`.
static inline struct MHD_OptionItem CMicroHTTPD_connection_option(MHD_NotifyConnectionCallback callback, void *cls) {
    struct MHD_OptionItem item = { MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)callback, cls };
    return item;
}

/// The option value as the intptr_t that MHD_OptionItem carries.
static inline struct MHD_OptionItem CMicroHTTPD_option(enum MHD_OPTION option, intptr_t value, void *ptr) {
    struct MHD_OptionItem item = { option, value, ptr };
    return item;
}

/// MHD_OPTION_NOTIFY_COMPLETED takes a function pointer in the `ptr_value`
/// slot's sibling: the callback goes in `value`, its closure in `ptr_value`.
static inline struct MHD_OptionItem CMicroHTTPD_completed_option(MHD_RequestCompletedCallback callback, void *cls) {
    struct MHD_OptionItem item = { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)callback, cls };
    return item;
}

/// The signature MHD_OPTION_UNESCAPE_CALLBACK expects (microhttpd.h names no type for it).
typedef size_t (*CMicroHTTPD_UnescapeCallback)(void *cls, struct MHD_Connection *connection, char *text);

/// MHD_OPTION_UNESCAPE_CALLBACK, like MHD_OPTION_NOTIFY_COMPLETED: the callback
/// in `value`, its closure in `ptr_value`.
static inline struct MHD_OptionItem CMicroHTTPD_unescape_option(CMicroHTTPD_UnescapeCallback callback, void *cls) {
    struct MHD_OptionItem item = { MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)callback, cls };
    return item;
}

/// The signature MHD_OPTION_URI_LOG_CALLBACK expects (microhttpd.h names no type for it).
typedef void *(*CMicroHTTPD_URILogCallback)(void *cls, const char *uri, struct MHD_Connection *connection);

/// MHD_OPTION_URI_LOG_CALLBACK: the callback in `value`, its closure in `ptr_value`.
static inline struct MHD_OptionItem CMicroHTTPD_uri_log_option(CMicroHTTPD_URILogCallback callback, void *cls) {
    struct MHD_OptionItem item = { MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)callback, cls };
    return item;
}

#endif
