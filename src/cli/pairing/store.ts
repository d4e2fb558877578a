import type { Database } from 'bun:sqlite'
import { PairingStore, type PairingApproval, type PairingRequest } from '../../channels/pairing'
import { loadConfig } from '../../config/load'
import { databasePathOf, dataDirOf, resolvePaths } from '../../config/paths'
import { AppError, CliError, ExitCode } from '../../errors'
import { openDatabase } from '../../storage/db'
import { isoShort } from '../output'

export const json = { json: { type: 'boolean', description: 'Machine-readable output' } } as const

/** The config keys the pairing commands read. */
export const PAIRING_NEEDS = ['dataDir']

/**
 * The pairing store of a config's database, opened directly: these commands work whether or not the gateway
 * runs (WAL and a busy timeout let both write), and the gateway reads approvals per message.
 */
export function withStore<T>(configFlag: string | undefined, use: (store: PairingStore) => T): T {
  const paths = resolvePaths({ env: process.env, configFlag })
  // Only the data directory is read: a ${VAR} elsewhere in the config need not be set in this shell.
  const { config } = loadConfig(paths.configPath, process.env, { needs: PAIRING_NEEDS })
  let db: Database
  try {
    db = openDatabase(databasePathOf(dataDirOf(config, paths.configPath)))
  } catch (error) {
    // A damaged or unreadable database is already a sentence with the path and what to do (exit 65 or 1).
    if (error instanceof CliError) throw error
    throw new CliError(`Cannot open the database in ${dataDirOf(config, paths.configPath)}: ${(error as Error).message}`, ExitCode.FAILURE, { cause: error })
  }
  try {
    return use(new PairingStore(db))
  } catch (error) {
    // The store's refusals (unknown or expired code, nothing to revoke) are sentences for the owner.
    if (error instanceof AppError && !(error instanceof CliError)) throw new CliError(error.message[0]!.toUpperCase() + error.message.slice(1))
    throw error
  } finally {
    db.close()
  }
}

export const when = isoShort
export const who = (entry: PairingRequest | PairingApproval) => (entry.username ? `@${entry.username}` : '-')
