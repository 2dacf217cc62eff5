import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The API runs beside the dev server: `vidsight serve` on :8080.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
  test: { environment: "node" },
});
