import Foundation
import Testing
import TestSupport

@testable import AuthService

/// The ``UserStore`` implementations the store suites run against, one test case each.
enum StoreBackend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }
}

/// Where one test's store lives: a fresh SQLite file, or a fresh database on the suite's PostgreSQL
/// server (`.postgres` trait). ``open(poolSize:)`` opens one more store on it, as another process
/// (`gatehouse users ...`) or another instance would.
struct StoreLocation: Sendable {
    let backend: StoreBackend
    /// The SQLite file, or the PostgreSQL URL.
    let address: String
    /// The PostgreSQL server holding the database (nil for SQLite).
    let server: PostgresServer?
    /// The PostgreSQL database's name (nil for SQLite).
    let database: String?

    /// Opens a store (with its own connections) on this location.
    func open(poolSize: Int = 4) throws -> any UserStore {
        switch backend {
        case .sqlite: return try SQLiteStore(path: address)
        case .postgres: return try PostgresStore(url: address, poolSize: poolSize)
        }
    }
}

/// Runs `body` with a fresh, empty location of `backend`; an SQLite file's directory is removed
/// afterwards (a PostgreSQL database goes with its server at the end of the suite).
func withStoreLocation<T>(_ backend: StoreBackend, _ body: (StoreLocation) throws -> T) throws -> T {
    switch backend {
    case .sqlite:
        let directory = NSTemporaryDirectory() + "gatehouse-store-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try body(StoreLocation(backend: .sqlite, address: directory + "/gatehouse.db", server: nil, database: nil))
    case .postgres:
        guard let server = PostgresServer.current else {
            throw HarnessError("a PostgreSQL store test runs outside a `.postgres` suite: there is no server")
        }
        let database = try server.createDatabase()
        return try body(
            StoreLocation(backend: .postgres, address: server.url(database: database), server: server, database: database))
    }
}

/// Runs `body` with a store on a fresh location of `backend` (and that location), closing the store
/// afterwards.
func withStore<T>(_ backend: StoreBackend, _ body: (any UserStore, StoreLocation) throws -> T) throws -> T {
    try withStoreLocation(backend) { location throws in
        let store = try location.open()
        defer { store.close() }
        return try body(store, location)
    }
}

/// A suite trait: the suite's tests share one PostgreSQL server, started
/// before the first and stopped after the last (`withPostgres`), reachable
/// as `PostgresServer.current`.
struct PostgresServerTrait: SuiteTrait, TestTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withPostgres { server in
            try await PostgresServer.$current.withValue(server) { try await function() }
        }
    }
}

extension Trait where Self == PostgresServerTrait {
    /// One PostgreSQL server for the suite (or test) it is applied to: `PostgresServer.current`.
    static var postgres: Self { PostgresServerTrait() }
}
