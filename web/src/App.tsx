import { Link, Navigate, NavLink, Route, Routes, useLocation } from "react-router-dom";
import { useMe, useSignOut } from "./session";
import { SignIn, SignUp } from "./pages/Auth";
import { Library } from "./pages/Library";
import { VideoPage } from "./pages/Video";
import { Settings } from "./pages/Settings";
import { Admin } from "./pages/Admin";

export function App() {
  const me = useMe();
  const location = useLocation();
  const signOut = useSignOut();
  if (me.isPending) return <main className="page" aria-busy="true" />;
  const user = me.data;
  const publicPage = location.pathname === "/signin" || location.pathname === "/signup";
  if (!user && !publicPage) return <Navigate to="/signin" replace state={{ from: location.pathname }} />;
  return (
    <>
      {user && (
        <header className="bar">
          <Link to="/" className="brand">vidsight</Link>
          <nav aria-label="Main">
            <NavLink to="/" end>Library</NavLink>
            <NavLink to="/settings">Settings</NavLink>
            {user.role === "admin" && <NavLink to="/admin">Admin</NavLink>}
          </nav>
          <button type="button" className="link" onClick={signOut}>Sign out</button>
        </header>
      )}
      <Routes>
        <Route path="/signin" element={user ? <Navigate to="/" replace /> : <SignIn />} />
        <Route path="/signup" element={user ? <Navigate to="/" replace /> : <SignUp />} />
        <Route path="/" element={<Library />} />
        <Route path="/videos/:id" element={<VideoPage />} />
        <Route path="/settings" element={<Settings />} />
        <Route path="/admin" element={user?.role === "admin" ? <Admin /> : <Navigate to="/" replace />} />
        <Route path="*" element={<main className="page"><h1>Not found</h1><Link to="/">Back to the library</Link></main>} />
      </Routes>
    </>
  );
}
