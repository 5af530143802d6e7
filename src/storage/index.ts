// The storage floor every Durable Object stands on: SQL, migrations, pages.
export { type Migrations, migrate } from "./migrate";
export { type JsonText, type Page, jsonArray, readPage } from "./paging";
export { Sql } from "./sql";
export { type LazyStorage, type Storage, openLazyStorage, openStorage } from "./storage";
