/// Password hashing and checking, run on the dedicated hashing pool so that
/// Argon2's deliberate slowness never holds an HTTP thread.
public struct PasswordService: Sendable {
    let hasher: PasswordHasher
    let pool: HashingPool

    public init(hasher: PasswordHasher, pool: HashingPool) {
        self.hasher = hasher
        self.pool = pool
    }

    /// The PHC-format Argon2id hash of `password`.
    /// - Throws: 503 `overloaded` when the hashing queue is full.
    public func hash(_ password: String) async throws -> String {
        let hasher = self.hasher
        let result = try await run { Result { try hasher.hash(password) } }
        return try result.get()
    }

    /// Whether `password` matches `encoded`. With no stored hash (unknown
    /// user) it checks against a dummy hash of the same cost and returns
    /// false, so both failures take the same time.
    public func verify(_ password: String, against encoded: String?) async throws(AuthError) -> Bool {
        let hasher = self.hasher
        let matches = try await run { hasher.verify(password, against: encoded ?? hasher.dummyHash) }
        return encoded != nil && matches
    }

    private func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws(AuthError) -> T {
        do {
            return try await pool.run(work)
        } catch {
            throw .overloaded
        }
    }
}
