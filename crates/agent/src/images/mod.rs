//! Images: how an image name becomes a program to run (being written).
