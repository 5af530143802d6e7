/** A failed statement, named by its SQL text (never by its bound values). */
export class SqlError extends Error {
  override readonly name = "SqlError";
  constructor(
    readonly statement: string,
    cause: unknown,
  ) {
    super(`SQL failed: ${statement.replace(/\s+/g, " ").trim()}`, { cause });
  }
}

type Row = Record<string, SqlStorageValue>;

/**
 * The one way this code talks to SQLite: always with bound parameters, and
 * with failures that say which statement broke.
 */
export class Sql {
  constructor(private readonly storage: SqlStorage) {}

  all<T extends Row>(statement: string, ...params: SqlStorageValue[]): T[] {
    try {
      return this.storage.exec<T>(statement, ...params).toArray();
    } catch (error) {
      throw new SqlError(statement, error);
    }
  }

  /** Rows as arrays of values in the statement's column order (no object per row). */
  raw(statement: string, ...params: SqlStorageValue[]): SqlStorageValue[][] {
    try {
      return Array.from(this.storage.exec(statement, ...params).raw());
    } catch (error) {
      throw new SqlError(statement, error);
    }
  }

  one<T extends Row>(statement: string, ...params: SqlStorageValue[]): T | null {
    return this.all<T>(statement, ...params)[0] ?? null;
  }

  run(statement: string, ...params: SqlStorageValue[]): number {
    try {
      return this.storage.exec(statement, ...params).rowsWritten;
    } catch (error) {
      throw new SqlError(statement, error);
    }
  }
}
