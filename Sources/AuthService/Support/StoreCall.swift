import MicroHTTP

/// Runs a store call, turning store failures into a logged 503: a client is
/// told to retry, the log keeps the store's own message.
func storeCall<T>(_ logger: Logger, _ body: () throws(StoreError) -> T) throws(AuthError) -> T {
    do {
        return try body()
    } catch {
        logger.error("store failed", ["error": error.description])
        throw AuthError.storeUnavailable
    }
}
