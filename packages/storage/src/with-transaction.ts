/** Runs `work` in one transaction on a pooled client: COMMIT on success, ROLLBACK and rethrow on failure. */
import type pg from "pg";

export async function withTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let isBroken = false;
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {
      isBroken = true;
    });
    throw error;
  } finally {
    // A client whose ROLLBACK failed is in an unknown state: destroy it instead of pooling it.
    client.release(isBroken);
  }
}
